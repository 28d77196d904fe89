"""The manifest (``path,label,split,sha256``, sorted) and the steps that write and read it.

The manifest is the dataset's identity in lineage: ``manifest_hash`` is the sha256 of its
canonical text (header, rows sorted by path, ``\\n`` line ends), so the same images, labels
and split always give the same hash, whatever wrote the file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from whichbin.config.pipeline import check_split_fractions
from whichbin.errors import ConfigError, DataError
from whichbin.imageio import DEFAULT_LIMITS, ImageLimits
from whichbin.processing.check import CheckReport, check_dataset
from whichbin.processing.layout import DatasetDir, atomic_write
from whichbin.processing.split import SPLITS, SplitSample, split_samples
from whichbin.progress import Reporter

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("path", "label", "split", "sha256")


@dataclass(frozen=True)
class ManifestRow:
    """One image of a split dataset; ``path`` is absolute."""

    path: Path
    label: str
    split: str
    sha256: str


@dataclass
class SplitResult:
    """What ``split_dataset`` wrote: the rows, the check it ran first, and the new identity."""

    rows: list[ManifestRow]
    check: CheckReport
    manifest_hash: str
    changed: int  # images whose split differs from the previous manifest

    def counts(self) -> dict[str, int]:
        return {s: sum(r.split == s for r in self.rows) for s in SPLITS}


def render_manifest(rows: Iterable[tuple[str, str, str, str]]) -> str:
    """Canonical manifest text: header, rows sorted by path, ``\\n`` line ends."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MANIFEST_COLUMNS)
    w.writerows(sorted(rows))
    return buf.getvalue()


def _read_rows(dataset: Path) -> list[tuple[str, str, str, str]]:
    ds = DatasetDir(Path(dataset))
    if not ds.manifest.is_file():
        raise DataError(f"{ds.manifest}: no manifest; run: whichbin data split {ds.root}")
    with ds.manifest.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(c.strip() for c in header) != MANIFEST_COLUMNS:
            raise DataError(
                f"{ds.manifest}: header must be {','.join(MANIFEST_COLUMNS)}, got {header}"
            )
        rows = []
        for n, r in enumerate(reader, 2):
            if not r:
                continue
            if len(r) != 4 or r[2] not in SPLITS:
                raise DataError(f"{ds.manifest}:{n}: expected path,label,split,sha256, got {r}")
            rows.append((r[0], r[1], r[2], r[3]))
    return rows


def load_manifest(dataset: Path) -> list[ManifestRow]:
    """Rows of ``DATASET/manifest.csv`` (sorted by path), paths made absolute.

    Raises:
        DataError: The manifest is missing or malformed (the message names the file).
    """
    root = Path(dataset).absolute()
    return [
        ManifestRow(root / p, label, split, sha)
        for p, label, split, sha in sorted(_read_rows(root))
    ]


def manifest_hash(dataset: Path) -> str:
    """sha256 of the manifest's canonical text: the dataset's identity in lineage."""
    return hashlib.sha256(render_manifest(_read_rows(Path(dataset))).encode()).hexdigest()


def split_dataset(
    dataset: Path,
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    min_side: int = 32,
    dup_distance: int = 6,
    reporter: Reporter | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
) -> SplitResult:
    """Check the dataset (cached), split it and write ``manifest.csv``.

    Args:
        dataset: Dataset directory.
        val: Validation fraction per label.
        test: Test fraction per label.
        seed: Split seed.
        min_side: Passed to the check.
        dup_distance: Passed to the check; near-duplicates stay in one split.
        reporter: Progress display.
        limits: Passed to the check: larger images are quarantined undecoded.

    Raises:
        DataError: Not a dataset, or it holds no usable images.
        ConfigError: Fractions out of range.
    """
    try:
        check_split_fractions(val, test)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    ds = DatasetDir(Path(dataset))
    report = check_dataset(ds.root, min_side, dup_distance, reporter, limits=limits)
    if not report.samples:
        raise DataError(f"{ds.root}: no usable images to split (see quarantine.jsonl)")
    previous: dict[str, str] = {}
    if ds.manifest.is_file():
        try:
            previous = {p: split for p, _, split, _ in _read_rows(ds.root)}
        except DataError:
            logger.warning("%s: unreadable; writing a new one", ds.manifest)
    assigned = split_samples(
        (SplitSample(s.path, s.label, report.groups[s.path]) for s in report.samples),
        val=val,
        test=test,
        seed=seed,
    )
    rel_rows = [(s.path, s.label, assigned[s.path], s.sha256) for s in report.samples]
    text = render_manifest(rel_rows)
    atomic_write(ds.manifest, text)
    changed = sum(1 for p, _, split, _ in rel_rows if p in previous and previous[p] != split)
    root = ds.root.absolute()
    rows = [ManifestRow(root / p, lb, sp, sha) for p, lb, sp, sha in sorted(rel_rows)]
    digest = hashlib.sha256(text.encode()).hexdigest()
    logger.info("%s: split %d images; %d changed split", ds.manifest, len(rows), changed)
    return SplitResult(rows, report, digest, changed)


def dataset_stats(dataset: Path) -> dict[str, Any]:
    """``{total, quarantined, labels: {label: {train, val, test, total}}}`` from the indexes.

    Images not in the manifest yet (imported after the last split) count only in totals.
    """
    ds = DatasetDir(Path(dataset)).require()
    samples = ds.load_samples()
    splits = {p: sp for p, _, sp, _ in _read_rows(ds.root)} if ds.manifest.is_file() else {}
    labels: dict[str, dict[str, int]] = {}
    for s in samples:
        counts = labels.setdefault(s.label, {"train": 0, "val": 0, "test": 0, "total": 0})
        counts["total"] += 1
        if s.path in splits:
            counts[splits[s.path]] += 1
    return {
        "total": len(samples),
        "quarantined": len(ds.load_quarantine()),
        "labels": dict(sorted(labels.items())),
    }


def guess_source(file_source: str, label: str) -> str:
    """The top-level source of an image copied in from ``file_source`` when nothing was
    recorded: the folder above its label folder (``…/trashnet/glass/x.jpg`` → ``…/trashnet``),
    else its folder."""
    folder = PurePath(file_source).parent
    if folder.name == label and folder.parent != folder:
        folder = folder.parent
    return str(folder)


def attribute_sources(
    samples: Iterable[tuple[str, str, str]],
    recorded: Mapping[str, str],
    roots: Sequence[tuple[str, Sequence[str]]],
) -> dict[str, str]:
    """The top-level source (a ``--data`` as given) of each image in a dataset.

    Args:
        samples: ``(dataset-relative path, label, file it was copied from)`` per image.
        recorded: Dataset-relative path → source, written when the image was imported.
        roots: ``(source, [absolute spellings of its path])``: a folder source holds the
            images copied from under it (the longest match wins).

    Images matched by neither (imported before sources were recorded) get
    :func:`guess_source`.
    """
    prefixes = sorted(
        ((PurePath(p).parts, name) for name, paths in roots for p in paths),
        key=lambda t: -len(t[0]),
    )
    out = {}
    for path, label, file_source in samples:
        name = recorded.get(path)
        if name is None:
            parts = PurePath(file_source).parts
            name = next((n for pre, n in prefixes if parts[: len(pre)] == pre), None)
        out[path] = name if name is not None else guess_source(file_source, label)
    return out
