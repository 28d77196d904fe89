"""What a dataset directory holds, and the small indexes kept in it.

```
DATASET/
  images/<label>/<file>     the usable images (copied in, never moved out of a source)
  samples.jsonl             one line per image: path, label, sha256, source (+ origin_sha256)
  quarantine/<label>/<file> files ``check`` rejected, kept for inspection
  quarantine.jsonl          one line per quarantined file: path, label, reason, sha256, from
  originals/<label>/<file>  the bytes of images ``check`` normalised (RGB, upright)
  manifest.csv              path,label,split,sha256, sorted: the dataset's identity
  .cache/                   sha256 by (size, mtime) and per-image check results; safe to delete
```
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whichbin.errors import DataError
from whichbin.inference import sha256_file

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


@dataclass
class Sample:
    """One image in ``samples.jsonl``. ``origin_sha256`` is the imported bytes' hash when
    ``check`` has since rewritten the file (so re-imports still recognise it)."""

    path: str
    label: str
    sha256: str
    source: str
    origin_sha256: str | None = None
    normalised: str | None = None

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "path": self.path,
            "label": self.label,
            "sha256": self.sha256,
            "source": self.source,
        }
        if self.origin_sha256:
            row["origin_sha256"] = self.origin_sha256
        if self.normalised:
            row["normalised"] = self.normalised
        return row


class DatasetDir:
    """Paths inside one dataset directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.images = self.root / "images"
        self.samples_file = self.root / "samples.jsonl"
        self.quarantine_dir = self.root / "quarantine"
        self.quarantine_file = self.root / "quarantine.jsonl"
        self.originals = self.root / "originals"
        self.manifest = self.root / "manifest.csv"
        self.cache = self.root / ".cache"

    def is_dataset(self) -> bool:
        return self.samples_file.is_file() or self.manifest.is_file()

    def require(self) -> DatasetDir:
        """Raise a DataError naming the directory unless it is a dataset."""
        if not self.root.is_dir():
            raise DataError(
                f"{self.root}: no such dataset; create it with: whichbin data import SRC "
                f"--to {self.root}"
            )
        if not self.is_dataset() and not self.images.is_dir():
            raise DataError(
                f"{self.root}: not a whichbin dataset (no samples.jsonl); create it with: "
                f"whichbin data import SRC --to {self.root}"
            )
        return self

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def load_samples(self) -> list[Sample]:
        return [Sample(**_pick(r, Sample)) for r in read_jsonl(self.samples_file)]

    def save_samples(self, samples: Iterable[Sample]) -> None:
        rows = sorted(samples, key=lambda s: s.path)
        write_jsonl(self.samples_file, (s.to_json() for s in rows))

    def load_quarantine(self) -> list[dict[str, Any]]:
        return list(read_jsonl(self.quarantine_file))

    def known_sha256(self) -> set[str]:
        """Every content hash the dataset holds or has held (images and quarantine)."""
        known = set()
        for s in self.load_samples():
            known.add(s.sha256)
            if s.origin_sha256:
                known.add(s.origin_sha256)
        known.update(q["sha256"] for q in self.load_quarantine() if q.get("sha256"))
        return known


def _pick(row: dict[str, Any], cls: type) -> dict[str, Any]:
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return {k: v for k, v in row.items() if k in fields}


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSON Lines file (none if it does not exist); errors name file and line."""
    if not path.is_file():
        return
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                yield json.loads(raw.decode("utf-8"))
            except ValueError as e:  # UnicodeDecodeError included
                raise DataError(f"{path}:{n}: not valid JSON ({e}); fix or delete the line") from e


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Replace a JSON Lines file atomically."""
    atomic_write(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)


def walk_files(top: Path) -> Iterator[tuple[str, ...]]:
    """Relative path parts of every non-hidden file under ``top``, sorted (fast: no pathlib)."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = os.path.relpath(dirpath, top)
        prefix = () if rel == "." else tuple(Path(rel).parts)
        for name in sorted(filenames):
            if not name.startswith("."):
                yield (*prefix, name)


class HashCache:
    """sha256 of files, recomputed only when a file's size or mtime changed.

    Stored as one JSON object {absolute path: [size, mtime_ns, sha256]}; call ``save()``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, list[Any]] = {}
        self._dirty = False
        if path.is_file():
            try:
                self._entries = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                self._entries = {}  # a cache: rebuild rather than fail

    def sha256(self, file: Path) -> str:
        """The file's sha256 (raises OSError if it cannot be read)."""
        key = os.path.abspath(file)
        st = os.stat(key)
        hit = self._entries.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return str(hit[2])
        digest = sha256_file(Path(key))
        self._entries[key] = [st.st_size, st.st_mtime_ns, digest]
        self._dirty = True
        return digest

    def remember(self, file: Path, digest: str) -> None:
        """Record a hash we already know (e.g. of a file we just copied)."""
        key = os.path.abspath(file)
        st = os.stat(key)
        self._entries[key] = [st.st_size, st.st_mtime_ns, digest]
        self._dirty = True

    def save(self) -> None:
        if self._dirty:
            atomic_write(self.path, json.dumps(self._entries, separators=(",", ":")))
            self._dirty = False


def unique_path(directory: Path, name: str, sha256: str, taken: set[Path] | None = None) -> Path:
    """``directory/name``, or ``<stem>-<sha8><suffix>`` if that is taken: deterministic."""
    taken = taken or set()
    candidate = directory / name
    if not candidate.exists() and candidate not in taken:
        return candidate
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(8, 65, 4):
        candidate = directory / f"{stem}-{sha256[:n]}{suffix}"
        if not candidate.exists() and candidate not in taken:
            return candidate
    raise DataError(f"{directory / name}: cannot find a free file name")
