"""What every registry backend checks before it stores anything.

``Registry.register`` (registry/base.py) starts with :func:`check_registration`, so a
bad name, a missing artifact or report, a file that is not a whichbin bundle, or metrics
that are not plain JSON are refused the same way, with the file or field named, before
any copy, upload or database row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whichbin.errors import ModelError, RegistryError
from whichbin.registry.base import check_name, plain_json


@dataclass(frozen=True)
class Registration:
    """The checked arguments of ``Registry.register``."""

    name: str
    artifact: Path
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    report: Path | None


def check_registration(
    name: str,
    artifact: Path,
    metrics: dict[str, Any],
    lineage: dict[str, Any],
    report: Path | None = None,
) -> Registration:
    """The arguments of a registration, checked; raises RegistryError naming what is wrong."""
    from whichbin.inference import read_meta

    check_name(name)
    metrics, lineage = plain_json(metrics, "metrics"), plain_json(lineage, "lineage")
    artifact = Path(artifact)
    if not artifact.is_file():
        raise RegistryError(f"{artifact}: cannot register: artifact file not found")
    try:
        read_meta(artifact)
    except ModelError as e:
        raise RegistryError(f"{artifact}: cannot register: {e}") from e
    if report is not None and not Path(report).exists():
        raise RegistryError(f"{report}: cannot register: report not found")
    return Registration(name, artifact, metrics, lineage, None if report is None else Path(report))
