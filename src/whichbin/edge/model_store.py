"""The model store of one edge device: the ``models_dir`` folder.

Artifacts are kept as ``<sha256>.onnx``; ``current.json`` names the active one (version,
sha256, file, url, when it became active), so an edge restarted without a broker still
has its model. The store downloads (or reuses an already downloaded artifact), checks
hashes, remembers the active model and prunes the others. It knows nothing of MQTT or of
loading a model: the deployment follower (``edge/follower.py``) does that with it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from whichbin.contract import iso, utc_now
from whichbin.errors import DeployError
from whichbin.inference import sha256_file

logger = logging.getLogger(__name__)

CURRENT_FILE = "current.json"
SHA256 = re.compile(r"[0-9a-f]{64}")

FetchFn = Callable[[str, Path, str, int | None], Path]  # (url, dest, sha256, signed size)


def default_fetch(url: str, dest: Path, expected_sha256: str, size: int | None = None) -> Path:
    """``whichbin.deploy.fetch.fetch_artifact`` (imported when first used)."""
    from whichbin.deploy.fetch import fetch_artifact  # lazy: deploy is optional on a camera

    return fetch_artifact(url, dest, expected_sha256, size=size)


@dataclass(frozen=True)
class StoredModel:
    """What ``current.json`` remembers: an artifact whose hash still matches."""

    version: str
    sha256: str
    path: Path


@dataclass
class ModelStore:
    """The artifacts and ``current.json`` under ``dir`` (created when first needed).

    Args:
        dir: the models folder.
        fetch: ``(url, dest, sha256, size) -> Path``; default
            ``whichbin.deploy.fetch.fetch_artifact`` (the follower passes its guard's fetch).
        clock: current UTC datetime (the ``activated`` time in ``current.json``).
    """

    dir: Path
    fetch: FetchFn = default_fetch
    clock: Callable[[], datetime] = utc_now

    def path(self, sha: str) -> Path:
        """Where the artifact with this sha256 lives."""
        return self.dir / f"{sha}.onnx"

    def download(self, url: str, sha: str, size: int | None = None) -> Path:
        """The artifact for ``sha``: already here (hash checked) or fetched from ``url``
        (at most ``size`` bytes, the signed size)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        dest = self.path(sha)
        if dest.is_file() and sha256_file(dest) == sha:
            logger.info("%s already downloaded", dest.name)
            return dest
        return Path(self.fetch(url, dest, sha, size))

    @staticmethod
    def check(path: Path, sha: str) -> None:
        """Raise DeployError (and delete the file) when its sha256 is not ``sha``."""
        actual = sha256_file(path)
        if actual != sha:
            path.unlink(missing_ok=True)
            raise DeployError(f"{path.name}: sha256 is {actual}, the deployment says {sha}")

    def remember(self, version: str, sha: str, path: Path, url: str) -> None:
        """Write ``current.json`` (atomically); a failure is logged, not raised."""
        record = {
            "version": version,
            "sha256": sha,
            "file": path.name,
            "url": url,
            "activated": iso(self.clock()),
        }
        tmp = self.dir / (CURRENT_FILE + ".tmp")
        try:
            tmp.write_text(json.dumps(record, indent=2))
            os.replace(tmp, self.dir / CURRENT_FILE)
        except OSError as e:
            logger.error("cannot write %s (%s): a restart will not remember this model", tmp, e)

    def remembered(self) -> StoredModel | None:
        """The model ``current.json`` names, if any.

        Raises:
            DeployError: the record is unreadable or its artifact's hash does not match.
        """
        path = self.dir / CURRENT_FILE
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
            artifact = self.dir / Path(record["file"]).name
            sha = str(record["sha256"])
            version = str(record["version"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DeployError(f"{path}: unreadable ({e})") from e
        if not artifact.is_file() or sha256_file(artifact) != sha:
            raise DeployError(f"{artifact}: sha256 does not match {CURRENT_FILE}")
        return StoredModel(version, sha, artifact)

    def prune(self, keep: set[str]) -> None:
        """Delete the artifacts whose sha256 is not in ``keep``."""
        for p in self.dir.glob("*.onnx"):
            if SHA256.fullmatch(p.stem) and p.stem not in keep:
                try:
                    p.unlink()
                except OSError as e:
                    logger.warning("cannot delete old model %s (%s)", p, e)
