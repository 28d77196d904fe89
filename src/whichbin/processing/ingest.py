"""Copy a source's images into a dataset: idempotent by content, never touching the source."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from whichbin.errors import DataError
from whichbin.processing.layout import DatasetDir, HashCache, Sample, unique_path
from whichbin.processing.sources import SourceItem, read_source
from whichbin.progress import Reporter, default_reporter

logger = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """What one import did. ``skipped`` counts images whose bytes the dataset already had."""

    source: str
    imported: int = 0
    skipped: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    conflicts: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "imported": self.imported,
            "skipped": self.skipped,
            "labels": dict(sorted(self.labels.items())),
            "conflicts": self.conflicts,
        }


def import_source(
    src: Path,
    dataset: Path,
    fmt: str = "auto",
    labels_file: Path | None = None,
    root: Path | None = None,
    mapping: dict[str, str] | None = None,
    reporter: Reporter | None = None,
) -> ImportReport:
    """Copy every image of ``src`` into ``dataset/images/<label>/``.

    Args:
        src: Folder tree, ``.lst``, ``.csv`` or prepared dataset directory.
        dataset: Dataset directory (created if missing).
        fmt: ``auto``, ``folder``, ``lst``, ``csv`` or ``dataset``.
        labels_file: For ``.lst``: label names, one per line.
        root: For ``.lst``/``.csv``: folder their paths are relative to.
        mapping: old label → new label.
        reporter: Progress display (default: rich on a terminal, else logging).

    Returns:
        Counts of imported and skipped images, per-label imports, label conflicts.

    Raises:
        DataError: The source is missing or malformed, or is the dataset itself.
    """
    src, dataset = Path(src), Path(dataset)
    if src.resolve() == dataset.resolve():
        raise DataError(f"{src}: is the dataset itself; import from another folder or file")
    items = read_source(src, fmt, labels_file=labels_file, root=root, mapping=mapping)
    return import_items(items, dataset, source=str(src), reporter=reporter)


def import_items(
    items: list[SourceItem], dataset: Path, source: str, reporter: Reporter | None = None
) -> ImportReport:
    """Copy these images in, skipping bytes the dataset already holds (or has quarantined)."""
    ds = DatasetDir(Path(dataset))
    if ds.root.exists() and not ds.root.is_dir():
        raise DataError(f"{ds.root}: exists and is not a directory")
    ds.images.mkdir(parents=True, exist_ok=True)
    report_progress = reporter or default_reporter()
    hashes = HashCache(ds.cache / "sha256.json")
    samples = ds.load_samples()
    known = ds.known_sha256()
    label_of = {s.sha256: s.label for s in samples}
    report = ImportReport(source=source)
    taken: set[Path] = set()
    try:
        with report_progress(f"import {source}", len(items)) as advance:
            for item in sorted(items, key=lambda i: (i.label, str(i.path))):
                try:
                    digest = hashes.sha256(item.path)
                except OSError as e:
                    raise DataError(f"{item.path}: cannot read ({e.strerror})") from e
                if digest in known:
                    report.skipped += 1
                    other = label_of.get(digest)
                    if other is not None and other != item.label:
                        report.conflicts.append(
                            {"path": str(item.path), "label": item.label, "kept": other}
                        )
                    advance(1)
                    continue
                folder = ds.images / item.label
                folder.mkdir(exist_ok=True)
                dest = unique_path(folder, item.path.name, digest, taken)
                taken.add(dest)
                shutil.copy2(item.path, dest)
                hashes.remember(dest, digest)
                samples.append(Sample(ds.rel(dest), item.label, digest, str(item.path)))
                known.add(digest)
                label_of[digest] = item.label
                report.imported += 1
                report.labels[item.label] = report.labels.get(item.label, 0) + 1
                advance(1)
    finally:
        # Save what was copied even when interrupted, so a re-run skips it.
        if report.imported or not ds.samples_file.exists():
            ds.save_samples(samples)
        hashes.save()
    for c in report.conflicts[:5]:
        logger.warning("%s: same image already in the dataset as %r", c["path"], c["kept"])
    logger.info(
        "%s: imported %d images, skipped %d already present",
        source,
        report.imported,
        report.skipped,
    )
    return report
