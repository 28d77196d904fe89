"""processing: ingest, validate, dedupe, split, manifest.

Library first; ``whichbin data`` is a thin CLI over these functions.
"""

from whichbin.processing.check import CheckReport, check_dataset
from whichbin.processing.ingest import ImportReport, import_source
from whichbin.processing.manifest import (
    ManifestRow,
    SplitResult,
    dataset_stats,
    load_manifest,
    manifest_hash,
    split_dataset,
)
from whichbin.processing.prepare import PreparedDataset, prepare_dataset
from whichbin.processing.split import SplitSample, split_samples

__all__ = [
    "CheckReport",
    "ImportReport",
    "ManifestRow",
    "PreparedDataset",
    "SplitResult",
    "SplitSample",
    "check_dataset",
    "dataset_stats",
    "import_source",
    "load_manifest",
    "manifest_hash",
    "prepare_dataset",
    "split_dataset",
    "split_samples",
]
