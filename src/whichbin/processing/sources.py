"""Read what a source holds (image path → label) without touching the images.

Sources: an image-folder tree (``ROOT/<label>/<file>``), a SageMaker/MXNet ``.lst`` file
(im2rec's ``index<TAB>label_index<TAB>relative/path``), a CSV (``path,label``, header
optional), or a prepared whichbin dataset directory.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from whichbin.errors import DataError
from whichbin.processing.layout import IMAGE_SUFFIXES, DatasetDir, read_jsonl, walk_files
from whichbin.textfile import load_yaml, read_text

logger = logging.getLogger(__name__)

SourceFormat = Literal["auto", "folder", "lst", "csv", "dataset"]
FORMATS: tuple[str, ...] = ("auto", "folder", "lst", "csv", "dataset")
MAX_LABEL_BYTES = 200  # a label is a folder name; file systems stop at 255 bytes


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
    """A label becomes a folder name: refuse empty names, path separators, control characters
    and names too long for a file system."""
    label = label.strip()
    if (
        not label
        or label in (".", "..")
        or "/" in label
        or "\\" in label
        or any(ord(c) < 32 or ord(c) == 127 for c in label)
        or len(label.encode("utf-8", "surrogatepass")) > MAX_LABEL_BYTES
    ):
        raise DataError(f"{where}: invalid label {label!r} (must be a plain folder name)")
    return label


def load_label_list(path: Path) -> list[str]:
    """Label names, one per line (like the recipe's labels.txt); line i is label index i."""
    lines = read_text(path, "labels file", DataError).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"{path}: labels file is empty; write one label name per line")
    return [check_label(line, f"{path}:{n}") for n, line in enumerate(lines, 1)]


def load_label_map(path: Path) -> dict[str, str]:
    """A YAML mapping old label → new label."""
    raw = load_yaml(path, "label map", DataError)
    if not isinstance(raw, dict):
        raise DataError(f"{path}: label map must be a YAML mapping of old label: new label")
    out = {}
    for old, new in raw.items():
        shown = str(old)[:60]
        key = f"{path}: {shown if shown.isprintable() else repr(shown)}"
        if not isinstance(new, str | int) or isinstance(new, bool):
            raise DataError(f"{key}: new label must be a string, got {new!r:.60}")
        out[str(old)] = check_label(str(new), key)
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
        path = root.joinpath(*parts)
        _require_inside(path, root, str(path))
        items.append(SourceItem(path, label))
    if loose:
        logger.warning("%s: ignored %d images not inside a <label>/ folder", src, loose)
    if not items:
        raise DataError(f"{src}: no images found; expected {src}/<label>/<image files>")
    return items


def _read_dataset(src: Path) -> list[SourceItem]:
    ds = DatasetDir(src)
    index = ds.samples_file if ds.samples_file.is_file() else ds.manifest
    try:
        if index is ds.samples_file:
            rows = [(r["path"], r["label"]) for r in read_jsonl(index)]
        else:
            text = read_text(index, "manifest", DataError, newline="")
            rows = [(r["path"], r["label"]) for r in csv.DictReader(io.StringIO(text))]
    except (KeyError, TypeError, csv.Error) as e:
        raise DataError(f"{index}: every row needs a path and a label ({e})") from e
    items = []
    for n, (rel, label) in enumerate(rows, 1):
        if not isinstance(rel, str) or not isinstance(label, str):
            raise DataError(f"{index}:{n}: path and label must be strings")
        where = f"{index}:{n}"
        items.append(
            (n, SourceItem(_resolve(src.absolute(), rel, where), check_label(label, where)))
        )
    return _checked(items, index, src.absolute())


def _resolve(base: Path, rel: str, where: str) -> Path:
    if "\x00" in rel:
        raise DataError(f"{where}: path {rel!r} contains a NUL character")
    p = Path(rel.strip().replace("\\", "/"))
    return (p if p.is_absolute() else base / p).absolute()


def _require_inside(path: Path, base: Path, where: str) -> None:
    """Refuse a path (or a link) leading outside ``base``: a list must not copy /etc/passwd."""
    if not path.resolve().is_relative_to(base.resolve()):
        raise DataError(
            f"{where}: {path} is outside {base}; only files under the source's folder are "
            "imported (pass --root to change it)"
        )


def _checked(items: list[tuple[int, SourceItem]], src: Path, base: Path) -> list[SourceItem]:
    """The items, once each is an image file under ``base`` that exists."""
    for n, i in items:
        _require_inside(i.path, base, f"{src}:{n}")
        if i.path.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(
                f"{src}:{n}: {i.path} is not an image file (expected one of "
                f"{', '.join(sorted(IMAGE_SUFFIXES))})"
            )
    missing = [(n, i.path) for n, i in items if not i.path.is_file()]
    if missing:
        n, p = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(
            f"{src}:{n}: image not found: {p}{more}; paths are relative to {base} "
            "(pass --root to change that)"
        )
    return [i for _, i in items]


def _label_index(value: str, names: list[str], where: str) -> str:
    """The label a .lst label index (``3`` or ``3.000000``) names in the labels file."""
    try:
        number = float(value)
    except ValueError as e:
        raise DataError(f"{where}: label index {value!r} is not a number") from e
    if not math.isfinite(number) or number != int(number) or not 0 <= number < len(names):
        raise DataError(
            f"{where}: label index {value} is not a line of the labels file ({len(names)} labels)"
        )
    return names[int(number)]


def _read_lst(src: Path, names: list[str] | None, root: Path | None) -> list[SourceItem]:
    base = Path(root) if root else src.parent
    items: list[tuple[int, SourceItem]] = []
    for n, line in enumerate(read_text(src, ".lst file", DataError).split("\n"), 1):
        if not line.strip():
            continue
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) < 3:
            raise DataError(
                f"{src}:{n}: expected index<TAB>label_index<TAB>path, got {line.strip()!r}"
            )
        rel = parts[-1].strip()
        if names is not None:
            label = _label_index(parts[1].strip(), names, f"{src}:{n}")
        else:
            folders = Path(rel.replace("\\", "/")).parts
            if len(folders) < 2:
                raise DataError(
                    f"{src}:{n}: path {rel!r} has no folder to take the label from; "
                    "pass --labels FILE"
                )
            label = check_label(folders[0], f"{src}:{n}")
        items.append((n, SourceItem(_resolve(base, rel, f"{src}:{n}"), label)))
    if not items:
        raise DataError(f"{src}: no entries")
    return _checked(items, src, base)


def _read_csv(src: Path, root: Path | None) -> list[SourceItem]:
    base = Path(root) if root else src.parent
    text = read_text(src, "CSV file", DataError, newline="").removeprefix("\ufeff")
    try:
        rows = [
            (n, r)
            for n, r in enumerate(csv.reader(io.StringIO(text)), 1)
            if any(c.strip() for c in r)
        ]
    except csv.Error as e:
        raise DataError(f"{src}: not a valid CSV file ({e})") from e
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
        items.append((n, SourceItem(_resolve(base, r[path_col], f"{src}:{n}"), label)))
    if not items:
        raise DataError(f"{src}: no rows after the header; expected path,label")
    return _checked(items, src, base)
