"""Fixtures shared by the registry, deploy and web tests: a real SQLite registry on disk."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from whichbin.registry.base import ModelVersion
from whichbin.registry.local import SqliteRegistry

GOOD_METRICS = {"accuracy": 0.91, "bin_accuracy": 0.953, "macro_f1": 0.88}
BAD_METRICS = {"accuracy": 0.42, "bin_accuracy": 0.51, "macro_f1": 0.3}
BAD_REASONS = ["bin_accuracy 0.510 < 0.800", "recall(recycling) 0.20 < 0.80"]
LINEAGE = {
    "manifest_hash": "m" * 16,
    "config_hash": "c" * 16,
    "code_version": "0.1.0+abc123",
    "sources": ["data/trashnet"],
    "parent": None,
}


def register(
    reg: SqliteRegistry, bundle: Path, passed: bool = True, report: Path | None = None
) -> ModelVersion:
    """Register the colour bundle as a passing or failing candidate."""
    return reg.register(
        "trash-classifier",
        bundle,
        metrics=GOOD_METRICS if passed else BAD_METRICS,
        gate_passed=passed,
        reasons=[] if passed else BAD_REASONS,
        lineage=LINEAGE,
        report=report,
    )


@pytest.fixture()
def registry(tmp_path: Path) -> SqliteRegistry:
    """An empty registry directory in tmp_path."""
    return SqliteRegistry(tmp_path / "registry")


@pytest.fixture()
def prefix() -> str:
    """A topic prefix of the test's own: retained messages on the shared broker never leak."""
    return f"t{uuid.uuid4().hex[:10]}"
