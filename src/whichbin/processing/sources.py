"""Read what a source holds (image path → label) without touching the images.

Sources: an image-folder tree (``ROOT/<label>/<file>``), a SageMaker/MXNet ``.lst`` file
(im2rec's ``index<TAB>label_index<TAB>relative/path``), a CSV (``path,label``, header
optional), or a prepared whichbin dataset directory.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from whichbin.errors import DataError
from whichbin.processing.layout import IMAGE_SUFFIXES, DatasetDir, read_jsonl, walk_files

logger = logging.getLogger(__name__)

SourceFormat = Literal["auto", "folder", "lst", "csv", "dataset"]
FORMATS: tuple[str, ...] = ("auto", "folder", "lst", "csv", "dataset")


@dataclass(frozen=True)
class SourceItem:
    """One image a source points at: an absolute path and its label."""

    path: Path
    label: str


def detect_format(src: Path) -> str:
    """``dataset`` or ``folder`` for directories, else by suffix (``.lst``, ``.csv``)."""
    if src.is_dir():
        return "dataset" if DatasetDir(src).is_dataset() else "folder"
    suffix = src.suffix.lower()
    if suffix == ".lst":
        return "lst"
    if suffix == ".csv":
        return "csv"
    if not src.exists():
        raise DataError(f"{src}: no such file or directory")
    raise DataError(
        f"{src}: cannot tell the format from the name; expected a folder, .lst or .csv "
        "(or pass --format)"
    )


def read_source(
    src: Path,
    fmt: str = "auto",
    labels_file: Path | None = None,
    root: Path | None = None,
    mapping: dict[str, str] | None = None,
) -> list[SourceItem]:
    """Every image a source lists, labels renamed through ``mapping``.

    Args:
        src: Folder tree, ``.lst``, ``.csv`` or prepared dataset directory.
        fmt: One of ``auto``, ``folder``, ``lst``, ``csv``, ``dataset``.
        labels_file: For ``.lst``: label names, one per line (line i names label index i).
        root: For ``.lst``/``.csv``: folder the paths are relative to (default: the file's).
        mapping: old label → new label.

    Raises:
        DataError: Naming the file (and line) that is missing or malformed.
    """
    src = Path(src)
    if not src.exists():
        raise DataError(f"{src}: no such file or directory")
    fmt = detect_format(src) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise DataError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if fmt in ("folder", "dataset") and not src.is_dir():
        raise DataError(f"{src}: --format {fmt} needs a directory")
    if fmt in ("lst", "csv") and not src.is_file():
        raise DataError(f"{src}: --format {fmt} needs a file")
    if labels_file is not None and fmt != "lst":
        raise DataError(f"--labels {labels_file}: only applies to .lst sources, not {fmt}")
    if fmt == "folder":
        items = _read_folder(src)
    elif fmt == "dataset":
        items = _read_dataset(src)
    elif fmt == "lst":
        names = load_label_list(labels_file) if labels_file else None
        items = _read_lst(src, names, root)
    else:
        items = _read_csv(src, root)
    if mapping:
        items = [SourceItem(i.path, mapping.get(i.label, i.label)) for i in items]
    return items


def check_label(label: str, where: str) -> str:
    """A label becomes a folder name: refuse empty names and path separators."""
    label = label.strip()
    if not label or label in (".", "..") or "/" in label or "\\" in label:
        raise DataError(f"{where}: invalid label {label!r} (must be a plain folder name)")
    return label


def load_label_list(path: Path) -> list[str]:
    """Label names, one per line (like the recipe's labels.txt); line i is label index i."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read labels file ({e.strerror})") from e
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"{path}: labels file is empty; write one label name per line")
    return [check_label(line, f"{path}:{n}") for n, line in enumerate(lines, 1)]


def load_label_map(path: Path) -> dict[str, str]:
    """A YAML mapping old label → new label."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise DataError(f"{path}: cannot read label map ({e.strerror})") from e
    except yaml.YAMLError as e:
        raise DataError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from e
    if not isinstance(raw, dict):
        raise DataError(f"{path}: label map must be a YAML mapping of old label: new label")
    out = {}
    for old, new in raw.items():
        if not isinstance(new, str | int) or isinstance(new, bool):
            raise DataError(f"{path}: {old}: new label must be a string, got {new!r}")
        out[str(old)] = check_label(str(new), f"{path}: {old}")
    return out


def _read_folder(src: Path) -> list[SourceItem]:
    items: list[SourceItem] = []
    loose = 0
    root = src.absolute()
    for parts in walk_files(root):
        if os.path.splitext(parts[-1])[1].lower() not in IMAGE_SUFFIXES:
            continue
        if len(parts) == 1:
            loose += 1
            continue
        label = check_label(parts[0], str(root / parts[0]))
        items.append(SourceItem(root.joinpath(*parts), label))
    if loose:
        logger.warning("%s: ignored %d images not inside a <label>/ folder", src, loose)
    if not items:
        raise DataError(f"{src}: no images found; expected {src}/<label>/<image files>")
    return items


def _read_dataset(src: Path) -> list[SourceItem]:
    ds = DatasetDir(src)
    if ds.samples_file.is_file():
        rows = [(r["path"], r["label"]) for r in read_jsonl(ds.samples_file)]
    else:
        with ds.manifest.open(newline="", encoding="utf-8") as f:
            rows = [(r["path"], r["label"]) for r in csv.DictReader(f)]
    return [SourceItem((src / p).absolute(), label) for p, label in rows]


def _resolve(base: Path, rel: str) -> Path:
    p = Path(rel.strip().replace("\\", "/"))
    return (p if p.is_absolute() else base / p).absolute()


def _require_files(items: list[tuple[int, SourceItem]], src: Path, base: Path) -> None:
    missing = [(n, i.path) for n, i in items if not i.path.is_file()]
    if missing:
        n, p = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(
            f"{src}:{n}: image not found: {p}{more}; paths are relative to {base} "
            "(pass --root to change that)"
        )


def _read_lst(src: Path, names: list[str] | None, root: Path | None) -> list[SourceItem]:
    base = Path(root) if root else src.parent
    items: list[tuple[int, SourceItem]] = []
    with src.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) < 3:
                raise DataError(
                    f"{src}:{n}: expected index<TAB>label_index<TAB>path, got {line.strip()!r}"
                )
            rel = parts[-1].strip()
            if names is not None:
                try:
                    value = float(parts[1])
                except ValueError as e:
                    raise DataError(f"{src}:{n}: label index {parts[1]!r} is not a number") from e
                index = int(value)
                if index != value or not 0 <= index < len(names):
                    raise DataError(
                        f"{src}:{n}: label index {parts[1]} is not a line of the labels file "
                        f"({len(names)} labels)"
                    )
                label = names[index]
            else:
                folders = Path(rel.replace("\\", "/")).parts
                if len(folders) < 2:
                    raise DataError(
                        f"{src}:{n}: path {rel!r} has no folder to take the label from; "
                        "pass --labels FILE"
                    )
                label = check_label(folders[0], f"{src}:{n}")
            items.append((n, SourceItem(_resolve(base, rel), label)))
    if not items:
        raise DataError(f"{src}: no entries")
    _require_files(items, src, base)
    return [i for _, i in items]


def _read_csv(src: Path, root: Path | None) -> list[SourceItem]:
    base = Path(root) if root else src.parent
    with src.open(newline="", encoding="utf-8-sig") as f:
        rows = [(n, r) for n, r in enumerate(csv.reader(f), 1) if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{src}: empty; expected rows of path,label")
    path_col, label_col = 0, 1
    header = [c.strip().lower() for c in rows[0][1]]
    if "path" in header and "label" in header:
        path_col, label_col = header.index("path"), header.index("label")
        rows = rows[1:]
    items: list[tuple[int, SourceItem]] = []
    for n, r in rows:
        if len(r) <= max(path_col, label_col):
            raise DataError(f"{src}:{n}: expected path,label, got {','.join(r)!r}")
        label = check_label(r[label_col], f"{src}:{n}")
        items.append((n, SourceItem(_resolve(base, r[path_col]), label)))
    if not items:
        raise DataError(f"{src}: no rows after the header; expected path,label")
    _require_files(items, src, base)
    return [i for _, i in items]
