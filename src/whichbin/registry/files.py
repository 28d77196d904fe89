"""The local registry's files: copies of artifacts and reports, and how their paths are stored.

Paths are stored relative to the registry directory, so a copied registry serves its own
files; ``relative_path`` also maps the absolute paths older registries stored.
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

from whichbin.errors import ModelError, RegistryError

PATH_FIELDS = ("artifact", "report")  # ModelVersion fields holding a path in the registry


def relative_path(path: str, name: str, number: int, root: Path) -> str:
    """A stored artifact/report path as a path relative to the registry ``root``.

    Already relative: unchanged. Absolute under ``root``: made relative. Absolute
    elsewhere (a registry copied from another directory): the part from
    ``artifacts/<name>/<N>/`` on, so the copy serves its own files. Anything else is kept.
    """
    p = Path(path)
    if not p.is_absolute():
        return path
    if p.is_relative_to(root):
        return p.relative_to(root).as_posix()
    parts, marker = p.parts, ("artifacts", name, str(number))
    for i in range(len(parts) - len(marker), -1, -1):
        if parts[i : i + len(marker)] == marker:
            return PurePosixPath(*parts[i:]).as_posix()
    return path


def copy_hashing(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` and return its sha256."""
    from whichbin.inference import HashingCopy

    with open(src, "rb") as fin, open(dst, "wb") as fout:
        return HashingCopy().copy(fin, fout)


def stamp_version(path: Path, vid: str, source: str) -> None:
    """Write the registered id into the bundle's ``whichbin.version`` metadata."""
    from whichbin.inference import read_meta, write_meta

    try:
        meta = read_meta(path)
    except ModelError as e:
        raise RegistryError(f"{source}: cannot register: {e}") from e
    write_meta(path, meta.model_copy(update={"version": vid}))


def copy_report(report: Path, vdir: Path) -> Path:
    """Copy a report file or folder into the version's folder; return the copy's path."""
    if report.is_dir():
        return Path(shutil.copytree(report, vdir / "report"))
    dest = vdir / "report"
    dest.mkdir()
    return Path(shutil.copy2(report, dest / report.name))
