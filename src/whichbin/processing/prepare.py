"""One call for the pipeline: import every source, check, split, write the manifest."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whichbin.config import DataConfig
from whichbin.errors import DataError
from whichbin.processing.ingest import ImportReport, import_source
from whichbin.processing.layout import DatasetDir
from whichbin.processing.manifest import ManifestRow, split_dataset
from whichbin.progress import Reporter

logger = logging.getLogger(__name__)


@dataclass
class PreparedDataset:
    """A dataset ready for training.

    Attributes:
        root: The dataset directory.
        manifest_hash: sha256 of the canonical manifest: the dataset's identity in lineage.
        rows: Images of the labels kept for training (absolute paths), sorted by path.
        quarantined: Every quarantine record (``path``, ``label``, ``reason``, ``sha256``...).
        duplicates: Near-duplicate groups, paths relative to ``root``.
        labels: Sorted labels with at least ``cfg.min_per_label`` images.
        skipped_labels: Rarer labels → their image count; their rows are not in ``rows``
            (they stay in the dataset and its manifest).
        imports: What each source's import did.
    """

    root: Path
    manifest_hash: str
    rows: list[ManifestRow]
    quarantined: list[dict[str, Any]]
    duplicates: list[list[str]]
    labels: list[str]
    skipped_labels: dict[str, int] = field(default_factory=dict)
    imports: list[ImportReport] = field(default_factory=list)


def prepare_dataset(
    sources: list[Path], dataset: Path, cfg: DataConfig, reporter: Reporter | None = None
) -> PreparedDataset:
    """Import each source into ``dataset``, check it, split it and write its manifest.

    Idempotent and incremental: images already in the dataset (by sha256) are skipped,
    unchanged files are not re-hashed (size + mtime index) nor re-decoded (check cache),
    so a re-run over unchanged sources takes seconds.

    Args:
        sources: Image-folder trees, ``.lst`` or ``.csv`` files, or prepared dataset
            directories (the ``dataset`` itself is allowed and simply re-used).
        dataset: Dataset directory (created if missing).
        cfg: The ``data`` config section (fractions, seed, min_side, dup_distance,
            min_per_label).
        reporter: Progress display (default: rich on a terminal, else logging).

    Raises:
        DataError: A source is missing or malformed, or nothing usable is left.
    """
    dataset = Path(dataset)
    imports = []
    for src in (Path(s) for s in sources):
        if src.exists() and src.resolve() == dataset.resolve():
            continue
        imports.append(import_source(src, dataset, "auto", reporter=reporter))
    if not DatasetDir(dataset).is_dataset():
        raise DataError(f"{dataset}: no sources given and not a dataset yet; pass sources")
    result = split_dataset(
        dataset,
        val=cfg.val,
        test=cfg.test,
        seed=cfg.seed,
        min_side=cfg.min_side,
        dup_distance=cfg.dup_distance,
        reporter=reporter,
    )
    counts = Counter(r.label for r in result.rows)
    labels = sorted(lb for lb, n in counts.items() if n >= cfg.min_per_label)
    skipped = {lb: n for lb, n in sorted(counts.items()) if n < cfg.min_per_label}
    for lb, n in skipped.items():
        logger.warning(
            "label %r has %d images (< min_per_label %d); left out of training",
            lb,
            n,
            cfg.min_per_label,
        )
    keep = set(labels)
    return PreparedDataset(
        root=dataset,
        manifest_hash=result.manifest_hash,
        rows=[r for r in result.rows if r.label in keep],
        quarantined=result.check.quarantined,
        duplicates=result.check.duplicates,
        labels=labels,
        skipped_labels=skipped,
        imports=imports,
    )
