"""One call for the pipeline: import every source, check, split, write the manifest."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whichbin.config import DataConfig
from whichbin.errors import DataError
from whichbin.imageio import ImageLimits
from whichbin.processing.ingest import ImportReport, import_source
from whichbin.processing.layout import DatasetDir, atomic_write
from whichbin.processing.manifest import ManifestRow, attribute_sources, split_dataset
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
        sources: Every source the dataset holds (a ``--data`` as first given), in the order
            they were first imported, this run's and earlier runs' alike.
        row_sources: Absolute image path → its source, for every row.
    """

    root: Path
    manifest_hash: str
    rows: list[ManifestRow]
    quarantined: list[dict[str, Any]]
    duplicates: list[list[str]]
    labels: list[str]
    skipped_labels: dict[str, int] = field(default_factory=dict)
    imports: list[ImportReport] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    row_sources: dict[str, str] = field(default_factory=dict)

    def source_of(self, row: ManifestRow) -> str:
        """The data source a row came from (``"?"`` when unknown)."""
        return self.row_sources.get(str(row.path), "?")


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
            min_per_label, max_image_pixels, max_image_bytes).
        reporter: Progress display (default: rich on a terminal, else logging).

    Raises:
        DataError: A source is missing or malformed, or nothing usable is left.
    """
    dataset = Path(dataset)
    ds = DatasetDir(dataset)
    index = SourceIndex.load(dataset)
    imports = []
    known = {s.path for s in ds.load_samples()}
    for src in (Path(s) for s in sources):
        if src.exists() and src.resolve() == dataset.resolve():
            continue
        report = import_source(src, dataset, "auto", reporter=reporter)
        imports.append(report)
        name = index.add_source(src)
        if report.imported:
            now = {s.path for s in ds.load_samples()}
            index.record(now - known, name)
            known = now
    index.save()
    if not ds.is_dataset():
        raise DataError(f"{dataset}: no sources given and not a dataset yet; pass sources")
    result = split_dataset(
        dataset,
        val=cfg.val,
        test=cfg.test,
        seed=cfg.seed,
        min_side=cfg.min_side,
        dup_distance=cfg.dup_distance,
        reporter=reporter,
        limits=ImageLimits(cfg.max_image_pixels, cfg.max_image_bytes),
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
    by_path = attribute_sources(
        ((s.path, s.label, s.source) for s in ds.load_samples()), index.samples, index.roots()
    )
    root = ds.root.absolute()
    held = set(by_path.values())
    named = [n for n in index.names() if n in held]
    return PreparedDataset(
        root=dataset,
        manifest_hash=result.manifest_hash,
        rows=[r for r in result.rows if r.label in keep],
        quarantined=result.check.quarantined,
        duplicates=result.check.duplicates,
        labels=labels,
        skipped_labels=skipped,
        imports=imports,
        sources=named + sorted(held - set(named)),
        row_sources={str(root / p): n for p, n in by_path.items()},
    )


class SourceIndex:
    """``DATASET/sources.json``: the sources imported into a dataset, and which images each
    brought, so lineage and per-source metrics name every source, not only the last one."""

    FILE = "sources.json"

    def __init__(self, path: Path, doc: dict[str, Any]) -> None:
        self.path = path
        self.sources: list[dict[str, Any]] = list(doc.get("sources", []))
        self.samples: dict[str, str] = dict(doc.get("samples", {}))
        self.changed = False

    @classmethod
    def load(cls, dataset: Path) -> SourceIndex:
        path = Path(dataset) / cls.FILE
        try:
            doc = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            logger.warning("%s: unreadable; sources are guessed from file paths", path)
            doc = {}
        return cls(path, doc if isinstance(doc, dict) else {})

    def add_source(self, src: Path) -> str:
        """The source's name: as first given, whatever spelling (relative, absolute) now."""
        spellings = sorted({str(src.absolute()), str(src.resolve())})
        for s in self.sources:
            if set(s["paths"]) & set(spellings):
                return str(s["name"])
        self.sources.append({"name": str(src), "paths": spellings})
        self.changed = True
        return str(src)

    def record(self, paths: set[str], name: str) -> None:
        self.samples.update({p: name for p in paths})
        self.changed = self.changed or bool(paths)

    def names(self) -> list[str]:
        return [str(s["name"]) for s in self.sources]

    def roots(self) -> list[tuple[str, list[str]]]:
        return [(str(s["name"]), list(s["paths"])) for s in self.sources]

    def save(self) -> None:
        if self.changed and self.path.parent.is_dir():
            doc = {"v": 1, "sources": self.sources, "samples": dict(sorted(self.samples.items()))}
            atomic_write(self.path, json.dumps(doc, indent=0))
            self.changed = False
