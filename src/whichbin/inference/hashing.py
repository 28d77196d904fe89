"""The sha256 of a bundle's bytes: how the registry, a deployment and the edge name a model."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


def sha256_file(path: Path, chunk: int = CHUNK) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class HashingCopy:
    """Copies a stream while hashing it; ``size`` counts the bytes copied so far, so a
    copy that fails part way can say how far it got."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def copy(self, src: BinaryIO, dst: BinaryIO, chunk: int = CHUNK) -> str:
        """Copy ``src`` to ``dst`` to the end; return the hex sha256 of what was copied."""
        while block := src.read(chunk):
            self._hash.update(block)
            dst.write(block)
            self.size += len(block)
        return self._hash.hexdigest()
