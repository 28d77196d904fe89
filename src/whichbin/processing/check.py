"""``data check``: validate every image, quarantine (never delete) the bad ones with a reason,
normalise the fixable ones, and find near-duplicates. Results are cached by sha256, so a
re-check only decodes new or changed files."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from whichbin.imageio import DEFAULT_LIMITS, ImageLimits
from whichbin.processing.layout import (
    IMAGE_SUFFIXES,
    DatasetDir,
    HashCache,
    Sample,
    append_jsonl,
    read_jsonl,
    unique_path,
    walk_files,
)
from whichbin.processing.phash import near_duplicate_groups
from whichbin.processing.validate import (
    CHECK_VERSION,
    Inspection,
    inspect_image,
    normalised_copy,
    save_image,
    too_small,
)
from whichbin.progress import Reporter, default_reporter

logger = logging.getLogger(__name__)


@dataclass
class CheckReport:
    """The dataset after a check.

    Attributes:
        samples: The usable images, sorted by path.
        quarantined: Every quarantine record of the dataset (this run's and earlier ones).
        new_quarantined: The records this run added.
        normalised: ``{path, fixes}`` for images this run rewrote as upright RGB.
        duplicates: Near-duplicate groups (two or more paths each), sorted.
        groups: path → group id (smallest sha256 in its near-duplicate group).
    """

    samples: list[Sample]
    quarantined: list[dict[str, Any]]
    new_quarantined: list[dict[str, Any]] = field(default_factory=list)
    normalised: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return len(self.samples)

    def to_json(self) -> dict[str, Any]:
        """The SPEC's ``data check --json`` document."""
        return {
            "ok": self.ok,
            "quarantined": [{"path": q["path"], "reason": q["reason"]} for q in self.quarantined],
            "duplicates": self.duplicates,
        }


class CheckCache:
    """Inspection results by sha256, in ``.cache/check.jsonl`` (append-only). A result holds
    for the size limits it was found with: other limits re-check."""

    def __init__(self, path: Path, limits: ImageLimits = DEFAULT_LIMITS) -> None:
        self.path = path
        self.limits = [limits.max_pixels, limits.max_bytes]
        self.results: dict[str, Inspection] = {}
        try:
            for r in read_jsonl(path):
                if r.get("v") == CHECK_VERSION and r.get("limits") == self.limits:
                    self.results[r["sha256"]] = Inspection.from_json(r)
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt, not reported
            logger.warning("%s: unreadable cache, re-checking everything", path)
            self.results = {}
            path.unlink(missing_ok=True)

    def add(self, insp: Inspection) -> None:
        self.results[insp.sha256] = insp
        append_jsonl(self.path, {**insp.to_json(), "limits": self.limits})


def check_dataset(
    dataset: Path,
    min_side: int = 32,
    dup_distance: int = 6,
    reporter: Reporter | None = None,
    workers: int | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
) -> CheckReport:
    """Validate, quarantine, normalise and group near-duplicates.

    Args:
        dataset: Dataset directory made by ``import``.
        min_side: Images whose shorter side is below this many pixels are quarantined.
        dup_distance: Largest dihedral pHash Hamming distance counted as near-duplicate.
        reporter: Progress display (default: rich on a terminal, else logging).
        workers: Decoding threads (default: CPU count, at most 8).
        limits: Larger images (pixels from the header, bytes) are quarantined undecoded.

    Raises:
        DataError: ``dataset`` is not a dataset directory.
    """
    ds = DatasetDir(Path(dataset)).require()
    progress = reporter or default_reporter()
    hashes = HashCache(ds.cache / "sha256.json")
    cache = CheckCache(ds.cache / "check.jsonl", limits)
    try:
        loaded = ds.load_samples()
        before = [x.to_json() for x in loaded]
        samples = _reconcile(ds, loaded, hashes)
        todo: dict[str, Path] = {}
        for s in samples:
            if s.sha256 not in cache.results:
                todo.setdefault(s.sha256, ds.root / s.path)
        _inspect_all(todo, cache, progress, workers, limits)

        report = CheckReport(samples=[], quarantined=[])
        kept: list[Sample] = []
        for s in samples:
            insp = cache.results[s.sha256]
            reason = insp.error or too_small(insp, min_side)
            if reason is None and insp.fixes:
                reason = _normalise(ds, s, insp, hashes, cache, report, limits)
            if reason is not None:
                report.new_quarantined.append(_quarantine(ds, s, reason))
                continue
            kept.append(s)
        report.samples = sorted(kept, key=lambda s: s.path)
        if [x.to_json() for x in report.samples] != before:
            ds.save_samples(report.samples)
    finally:
        hashes.save()
    report.quarantined = ds.load_quarantine()
    _group(report, cache, dup_distance)
    logger.info(
        "%s: %d ok, %d newly quarantined, %d normalised, %d near-duplicate groups",
        ds.root,
        report.ok,
        len(report.new_quarantined),
        len(report.normalised),
        len(report.duplicates),
    )
    return report


def _reconcile(ds: DatasetDir, loaded: list[Sample], hashes: HashCache) -> list[Sample]:
    """The samples index brought in line with the files: drop missing, rehash edited, adopt
    images someone copied into ``images/<label>/`` by hand."""
    samples = []
    for s in loaded:
        path = os.path.join(ds.root, s.path)
        if not os.path.isfile(path):
            logger.warning("%s: listed in samples.jsonl but missing; dropped", path)
            continue
        digest = hashes.sha256(Path(path))
        if digest != s.sha256:
            logger.info("%s: changed since import; re-checking", path)
            s.origin_sha256 = s.origin_sha256 or s.sha256
            s.sha256 = digest
        samples.append(s)
    tracked = {s.path for s in samples}
    shas = {s.sha256 for s in samples}
    if ds.images.is_dir():
        for parts in walk_files(ds.images):
            rel = "/".join(("images", *parts))
            if rel in tracked or len(parts) < 2:
                continue
            if os.path.splitext(parts[-1])[1].lower() not in IMAGE_SUFFIXES:
                continue
            f = ds.root / rel
            digest = hashes.sha256(f)
            if digest in shas:
                logger.warning("%s: same bytes as another image in the dataset; ignored", f)
                continue
            logger.info("%s: not in samples.jsonl; adopting it as label %r", f, parts[0])
            samples.append(Sample(rel, parts[0], digest, "untracked"))
            shas.add(digest)
    return sorted(samples, key=lambda s: s.path)


def _inspect_all(
    todo: dict[str, Path],
    cache: CheckCache,
    progress: Reporter,
    workers: int | None,
    limits: ImageLimits,
) -> None:
    if not todo:
        return
    n = workers or min(8, os.cpu_count() or 1)
    items = sorted(todo.items())
    with progress("checking images", len(items)) as advance, ThreadPoolExecutor(n) as pool:
        # PIL releases the GIL while decoding, so threads use every core.
        for insp in pool.map(lambda kv: inspect_image(kv[1], kv[0], limits), items):
            cache.add(insp)
            advance(1)


def _quarantine(ds: DatasetDir, s: Sample, reason: str) -> dict[str, Any]:
    src = ds.root / s.path
    folder = ds.quarantine_dir / s.label
    folder.mkdir(parents=True, exist_ok=True)
    dest = unique_path(folder, src.name, s.sha256)
    os.replace(src, dest)
    record = {
        "path": ds.rel(dest),
        "label": s.label,
        "reason": reason,
        "sha256": s.sha256,
        "from": s.path,
        "source": s.source,
    }
    append_jsonl(ds.quarantine_file, record)
    logger.warning("%s: quarantined (%s)", s.path, reason)
    return record


def _normalise(
    ds: DatasetDir,
    s: Sample,
    insp: Inspection,
    hashes: HashCache,
    cache: CheckCache,
    report: CheckReport,
    limits: ImageLimits,
) -> str | None:
    """Rewrite as upright RGB JPEG/PNG, original kept in ``originals/``. Returns a quarantine
    reason if that fails."""
    src = ds.root / s.path
    try:
        rgb, fmt = normalised_copy(src, limits)
    except Exception as e:  # noqa: BLE001 - decoded once already; anything odd is quarantined
        return f"unsupported: cannot convert to RGB ({e})"
    suffix = src.suffix.lower()
    keep_name = (fmt == "JPEG" and suffix in (".jpg", ".jpeg")) or (
        fmt == "PNG" and suffix == ".png"
    )
    name = src.name if keep_name else src.stem + (".jpg" if fmt == "JPEG" else ".png")
    folder = ds.originals / s.label
    folder.mkdir(parents=True, exist_ok=True)
    original = unique_path(folder, src.name, s.sha256)
    os.replace(src, original)
    dest = src.parent / name
    if dest.exists():
        dest = unique_path(src.parent, name, s.sha256)
    save_image(rgb, dest, fmt)
    digest = hashes.sha256(dest)
    if digest not in cache.results:
        cache.add(inspect_image(dest, digest, limits))
    report.normalised.append({"path": ds.rel(dest), "fixes": ", ".join(insp.fixes)})
    logger.info("%s: normalised (%s); original in %s", s.path, ", ".join(insp.fixes), original)
    s.origin_sha256 = s.origin_sha256 or s.sha256
    s.sha256 = digest
    s.path = ds.rel(dest)
    s.normalised = ", ".join(insp.fixes)
    return None


def _group(report: CheckReport, cache: CheckCache, max_distance: int) -> None:
    samples = report.samples
    if not samples:
        return
    results = [cache.results[s.sha256] for s in samples]
    h = np.array([r.hash_ints() for r in results], dtype=np.uint64).reshape(-1, 8)
    thumbs = np.stack([r.thumb_array() for r in results])
    groups = near_duplicate_groups(h, max_distance, thumbs)
    for s in samples:
        report.groups[s.path] = s.sha256
    for g in groups:
        members = [samples[i] for i in g]
        gid = min(m.sha256 for m in members)
        for m in members:
            report.groups[m.path] = gid
        report.duplicates.append(sorted(m.path for m in members))
    report.duplicates.sort()
