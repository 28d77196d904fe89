"""``whichbin classify``: which bin do these photos go in?"""

from __future__ import annotations

from pathlib import Path

import typer

from whichbin.cli.options import ConfigOpt, RegistryOpt, load_config
from whichbin.cli.output import emit_jsonl, err_console
from whichbin.errors import DataError, ModelError, RegistryError


def _expand(paths: list[Path]) -> list[Path]:
    from whichbin.processing.layout import IMAGE_SUFFIXES

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DataError(
                    f"{p}: no images in this folder ({', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or folder")
    return out


def resolve_model(model: str | None, registry_uri: str) -> Path:
    """``--model``: a bundle file, or a registry version (``trash-classifier/4`` or ``4``)
    looked up in ``registry_uri``; None is the bundled default. A file wins over a version."""
    from whichbin.inference import default_model_path
    from whichbin.registry import open_registry, parse_version_id

    if model is None:
        return default_model_path()
    path = Path(model)
    try:
        parse_version_id(model)
    except RegistryError:
        return path  # not a version id: a file (the classifier names it when it is missing)
    if path.exists():
        return path
    try:
        return open_registry(registry_uri, create=False).artifact_path(model)
    except RegistryError as e:
        raise ModelError(f"--model {model}: not a file; as a registry version: {e}") from e


def classify(
    paths: list[Path] = typer.Argument(..., help="Image files or folders"),
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Bundle file, or a registry version NAME/N (e.g. trash-classifier/4) looked up "
        "in --registry (default: the bundled model)",
    ),
    rules: Path | None = typer.Option(None, "--rules", help="Rule pack YAML"),
    as_json: bool = typer.Option(False, "--json", help="JSON Lines, one object per image"),
    top_k: int = typer.Option(3, "--top-k", min=1, help="How many labels in top_k"),
    registry: RegistryOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Classify photos into bins.

    A file that is not a usable image gets {"path", "error"} (or a line on stderr) and the
    others go on; the exit code is then 1, as for any error.

    Example: whichbin classify --json photo.jpg photos/

    With a registered version: whichbin classify --model trash-classifier/4 photos/
    """
    from rich.console import Console
    from rich.markup import escape

    from whichbin.contract import DECIDED
    from whichbin.imageio import ImageError, load_rgb
    from whichbin.inference import OnnxClassifier
    from whichbin.rules import load_rules, unfamiliar

    registry_uri = load_config(config, {"pipeline.registry.uri": registry}).pipeline.registry.uri
    bundle = resolve_model(model, registry_uri)
    clf = OnnxClassifier(bundle, load_rules(rules) if rules else None)
    out = Console(soft_wrap=True, highlight=False)  # results on stdout, paths never broken
    files = _expand(paths)
    failed = 0
    for path in files:
        try:
            rgb = load_rgb(path)
        except ImageError as e:
            failed += 1
            if as_json:
                emit_jsonl({"path": str(path), "error": e.reason})
            else:
                err_console.print(str(e), markup=False, highlight=False)
            continue
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
            out.print(
                f"{escape(str(path))}: [bold]{pred.bin}[/]{mark} — {pred.label} "
                f"{pred.confidence:.2f}"
            )
    if failed:
        raise DataError(f"{failed} of {len(files)} files are not usable images (named above)")


def register(app: typer.Typer) -> None:
    """Add ``classify`` to the root app."""
    app.command("classify")(classify)
