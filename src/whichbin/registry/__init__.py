"""The model registry: versions, their gate results and lineage, and human approval.

``open_registry(uri)`` picks the backend: a local directory (SQLite plus artifacts) or
``sagemaker://GROUP``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from whichbin.errors import RegistryError
from whichbin.registry.base import (
    DEFAULT_MODEL_NAME,
    ApprovalStatus,
    ModelVersion,
    Registry,
    RegistryEvent,
    TransitionRefused,
    VersionNotFound,
    headline_metrics,
    parse_version_id,
)

__all__ = [
    "DEFAULT_MODEL_NAME",
    "ApprovalStatus",
    "ModelVersion",
    "Registry",
    "RegistryEvent",
    "TransitionRefused",
    "VersionNotFound",
    "headline_metrics",
    "open_registry",
    "parse_version_id",
]


def open_registry(
    uri: str, default_name: str = DEFAULT_MODEL_NAME, create: bool = True
) -> Registry:
    """Open the registry at ``uri``: a directory path, ``file:///dir`` or ``sagemaker://GROUP``.

    Args:
        uri: Where the registry lives. A local directory is created on first use.
        default_name: Model name used when a version id is given as a bare number.
        create: Create a missing local registry; False raises RegistryError instead.

    Raises:
        RegistryError: The URI scheme is unknown or the registry cannot be opened.
    """
    parsed = urlparse(uri)
    if parsed.scheme == "sagemaker":
        from whichbin.registry.sagemaker import create_sagemaker_registry

        return create_sagemaker_registry(uri, default_name)
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
    elif parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive
        raise RegistryError(
            f"--registry {uri!r}: unknown scheme {parsed.scheme}:// "
            "(use a directory path or sagemaker://GROUP)"
        )
    else:
        path = Path(uri)
    from whichbin.registry.local import SqliteRegistry

    return SqliteRegistry(path.expanduser(), default_name=default_name, create=create)
