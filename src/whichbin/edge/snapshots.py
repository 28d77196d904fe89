"""Snapshots of decided items on local disk, and corrections turned into training data.

Layout under the snapshot folder (``<data-dir>/snapshots``)::

    events/<event_id>.jpg  + .json     decided items: the newest ``max_count``, at most
                                        ``max_age_days`` old
    unsure/<event_id>.jpg  + .json     unsure items, kept for review (``unsure_max_count``)
    corrections/<bin>/<event_id>.jpg   items a person corrected (never pruned)
    corrections/corrections.jsonl      one JSON record per correction

``corrections/`` is an image-folder tree (``<label>/<file>``), so
``whichbin data import <snapshots>/corrections --to DATASET`` reads it (the labels are bin
names; ``--map`` renames them). The JPEG is the image the model classified (the region of
interest of the decision frame). The ``.json`` beside each snapshot is the event payload.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from whichbin.config.edge import SnapshotConfig
from whichbin.contract import UNSURE, Correction, Event, iso, utc_now

logger = logging.getLogger(__name__)

EVENTS = "events"  # folders: events/, unsure/ (named for the decision), corrections/
CORRECTIONS = "corrections"
CORRECTIONS_LOG = "corrections.jsonl"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """RGB uint8 → JPEG bytes."""
    import cv2

    ok, buf = cv2.imencode(
        ".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("cv2 could not encode the snapshot as JPEG")
    return buf.tobytes()


def safe_name(value: str, what: str) -> str:
    """A value that becomes a file or folder name: letters, digits, ``_ . -`` only."""
    if not _SAFE_NAME.fullmatch(value) or value in (".", ".."):
        raise ValueError(f"{what} {value!r}: use letters, digits, '_', '.', '-' only")
    return value


class SnapshotStore:
    """Saves decision snapshots, prunes them, and files corrections. Thread-safe.

    Args:
        root: the snapshot folder (created when missing).
        policy: the ``edge.snapshots`` section: retention and JPEG quality.
        clock: wall-clock seconds (``time.time``), for ages.
    """

    def __init__(
        self,
        root: Path,
        policy: SnapshotConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root)
        self.policy = policy or SnapshotConfig()
        self.clock = clock
        self._lock = threading.Lock()
        for sub in (EVENTS, UNSURE, CORRECTIONS):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # -- saving -----------------------------------------------------------------------
    def save(self, image: np.ndarray, event: Event) -> tuple[Path, bytes]:
        """Write ``<events|unsure>/<id>.jpg`` and its ``.json``; returns the path and JPEG."""
        kind = UNSURE if event.decision == UNSURE else EVENTS
        name = safe_name(event.id, "event id")
        data = encode_jpeg(image, self.policy.quality)
        folder = self.root / kind
        with self._lock:
            _write_atomic(folder / f"{name}.json", event.to_json().encode())
            _write_atomic(folder / f"{name}.jpg", data)
        self.prune()
        return folder / f"{name}.jpg", data

    def prune(self, now: float | None = None) -> int:
        """Apply the retention policy; returns how many snapshots were deleted."""
        now = self.clock() if now is None else now
        p = self.policy
        with self._lock:
            removed = self._prune(self.root / EVENTS, p.max_count, p.max_age_days, now)
            removed += self._prune(
                self.root / UNSURE, p.unsure_max_count, p.unsure_max_age_days, now
            )
        return removed

    def find(self, event_id: str) -> Path | None:
        """The snapshot of an event (corrected, unsure or decided), or None."""
        with self._lock:
            return self._find_unlocked(safe_name(event_id, "event id"))

    def list(self, kind: str = EVENTS) -> list[Path]:
        """Snapshots of one kind (``events`` or ``unsure``), oldest first."""
        return [p for p, _ in _by_age(self.root / kind)]

    # -- corrections ------------------------------------------------------------------
    def correct(self, correction: Correction) -> dict[str, Any]:
        """File a correction: copy the item's snapshot under ``corrections/<bin>/``.

        Returns the record appended to ``corrections.jsonl`` (``file`` is None when the
        snapshot is gone). A second correction of the same item replaces the first, so an
        image never sits under two labels. A reviewed unsure item leaves ``unsure/``.

        Raises:
            ValueError: the event id or bin is not a safe file name.
        """
        event_id = safe_name(correction.event_id, "event id")
        new_bin = safe_name(correction.bin, "bin")
        corrections = self.root / CORRECTIONS
        with self._lock:
            source = self._find_unlocked(event_id)
            original = _read_event(source.with_suffix(".json")) if source else None
            target = corrections / new_bin / f"{event_id}.jpg"
            file: str | None = None
            if source is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                if source != target:
                    shutil.copy2(source, target)
                    meta = source.with_suffix(".json")
                    if meta.is_file():
                        shutil.copy2(meta, target.with_suffix(".json"))
                    for stale in corrections.glob(f"*/{event_id}.*"):
                        if stale.parent != target.parent:
                            stale.unlink(missing_ok=True)
                    if source.parent.name == UNSURE:
                        source.unlink(missing_ok=True)
                        source.with_suffix(".json").unlink(missing_ok=True)
                file = target.relative_to(corrections).as_posix()
            record = {
                "v": 1,
                "event_id": event_id,
                "bin": new_bin,
                "ts": correction.ts,
                "source": correction.source,
                "received": iso(utc_now()),
                "file": file,
                "was": (
                    {k: original.get(k) for k in ("bin", "label", "confidence", "decision", "ts")}
                    if original
                    else None
                ),
                "model": original.get("model") if original else None,
            }
            with (corrections / CORRECTIONS_LOG).open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
        if file is None:
            logger.warning(
                "correction of %s to %s recorded, but its snapshot is gone", event_id, new_bin
            )
        else:
            logger.info("correction: %s is %s (saved %s)", event_id, new_bin, file)
        return record

    def _find_unlocked(self, event_id: str) -> Path | None:
        corrected = sorted((self.root / CORRECTIONS).glob(f"*/{event_id}.jpg"))
        if corrected:
            return corrected[0]
        for kind in (UNSURE, EVENTS):
            if (self.root / kind / f"{event_id}.jpg").is_file():
                return self.root / kind / f"{event_id}.jpg"
        return None

    @staticmethod
    def _prune(folder: Path, max_count: int, max_age_days: float | None, now: float) -> int:
        entries = _by_age(folder)
        doomed = entries[: max(0, len(entries) - max_count)]
        if max_age_days is not None:
            cutoff = now - max_age_days * 86400
            doomed += [(p, m) for p, m in entries[len(doomed) :] if m < cutoff]
        for path, _ in doomed:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
        return len(doomed)


def _by_age(folder: Path) -> list[tuple[Path, float]]:
    """``*.jpg`` in a folder with their mtimes, oldest first."""
    out = []
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.endswith(".jpg") and entry.is_file():
                    out.append((Path(entry.path), entry.stat().st_mtime))
    except FileNotFoundError:
        return []
    out.sort(key=lambda pm: (pm[1], pm[0].name))
    return out


def _read_event(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
