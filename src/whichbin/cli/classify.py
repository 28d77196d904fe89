"""``whichbin classify``: which bin do these photos go in?"""

from __future__ import annotations

from pathlib import Path

import typer

from whichbin.cli.output import emit_jsonl, err_console
from whichbin.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def _expand(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or folder")
    return out


def classify(
    paths: list[Path] = typer.Argument(..., help="Image files or folders"),
    model: Path | None = typer.Option(None, "--model", "-m", help="Bundle (default: bundled)"),
    rules: Path | None = typer.Option(None, "--rules", help="Rule pack YAML"),
    as_json: bool = typer.Option(False, "--json", help="JSON Lines, one object per image"),
    top_k: int = typer.Option(3, "--top-k", help="How many labels in top_k"),
) -> None:
    """Classify photos into bins.

    Example: whichbin classify --json photo.jpg photos/
    """
    from PIL import Image, UnidentifiedImageError

    from whichbin.contract import DECIDED
    from whichbin.inference import OnnxClassifier, default_model_path
    from whichbin.rules import load_rules, unfamiliar

    clf = OnnxClassifier(model or default_model_path(), load_rules(rules) if rules else None)
    for path in _expand(paths):
        try:
            with Image.open(path) as im:
                rgb = im.convert("RGB")
        except (OSError, UnidentifiedImageError) as e:
            raise DataError(f"{path}: not a readable image ({e.__class__.__name__})") from e
        pred = clf.predict([rgb], k=top_k)[0]
        record = {"path": str(path), **pred.model_dump()}
        if pred.familiarity is not None:  # an extension: how like its training photos it is
            record["familiarity"] = round(pred.familiarity, 4)
        strange = unfamiliar(pred.familiarity, clf.min_familiarity)
        if as_json:
            emit_jsonl(record)
        else:
            mark = "" if pred.decision == DECIDED else " (unsure)"
            mark = " (unsure: unlike anything it was trained on)" if strange else mark
            err_console.print(
                f"{path}: [bold]{pred.bin}[/]{mark} — {pred.label} {pred.confidence:.2f}"
            )


def register(app: typer.Typer) -> None:
    """Add ``classify`` to the root app."""
    app.command("classify")(classify)
