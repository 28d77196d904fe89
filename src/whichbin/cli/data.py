"""``whichbin data``: import, check, split and describe datasets (thin layer over processing)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from pydantic import ValidationError

from whichbin.cli.options import ConfigOpt, JsonOpt, load_config
from whichbin.config import DataConfig
from whichbin.errors import ConfigError, validation_message

app = typer.Typer(
    help="Build datasets: import images, check them, split them, count them.\n\n"
    "Example: whichbin data import ../shared/data/trashnet --to datasets/main",
    no_args_is_help=True,
)


class SourceFormat(StrEnum):
    auto = "auto"
    folder = "folder"
    lst = "lst"
    csv = "csv"
    dataset = "dataset"


def _data_config(config: Path | None, **flags: object) -> DataConfig:
    """``pipeline.data`` from the config file and the environment, then the flags that were
    given, validated with the config's own rules; errors name the file's key or the flag."""
    section = load_config(config).pipeline.data.model_dump()
    given = {k: v for k, v in flags.items() if v is not None}
    try:
        return DataConfig.model_validate({**section, **given})
    except ValidationError as e:
        # The only rule across fields is the split fractions one.
        raise ConfigError(validation_message(e, flag=True, top="--val + --test")) from e


@app.command("import")
def import_(
    src: Path = typer.Argument(
        ..., help="Image folder tree (<label>/<file>), .lst, .csv or dataset"
    ),
    to: Path = typer.Option(..., "--to", help="Dataset directory (created if missing)"),
    fmt: SourceFormat = typer.Option(SourceFormat.auto, "--format", help="Source format"),
    map_file: Path | None = typer.Option(None, "--map", help="YAML mapping old label: new label"),
    labels: Path | None = typer.Option(
        None, "--labels", help=".lst only: label names, one per line (line i = index i)"
    ),
    root: Path | None = typer.Option(
        None, "--root", help=".lst/.csv: folder their paths are relative to (default: theirs)"
    ),
    json_out: JsonOpt = False,
) -> None:
    """Copy images into a dataset; images already there (same bytes) are skipped.

    Sources are only read. A .lst takes label names from --labels, else from path folders.

    Example: whichbin data import train.lst --labels labels.txt --to datasets/main
    """
    from whichbin.cli.output import emit_json
    from whichbin.processing.ingest import import_source
    from whichbin.processing.sources import load_label_map

    mapping = load_label_map(map_file) if map_file else None
    report = import_source(src, to, fmt.value, labels_file=labels, root=root, mapping=mapping)
    if json_out:
        emit_json(report.to_json())
        return
    typer.echo(f"{to}: imported {report.imported} images, skipped {report.skipped} already present")
    for label, n in sorted(report.labels.items()):
        typer.echo(f"  {label}: +{n}")


@app.command()
def check(
    dataset: Path = typer.Argument(..., help="Dataset directory"),
    min_side: int | None = typer.Option(
        None, "--min-side", help="Quarantine images with a shorter side (px) \\[default: 32]"
    ),
    dup_distance: int | None = typer.Option(
        None, "--dup-distance", help="Near-duplicate pHash distance (bits) \\[default: 6]"
    ),
    max_pixels: int | None = typer.Option(
        None,
        "--max-image-pixels",
        help="Quarantine larger images (width x height) \\[default: 40000000]",
    ),
    max_bytes: int | None = typer.Option(
        None, "--max-image-bytes", help="Quarantine larger files (bytes) \\[default: 50000000]"
    ),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Validate every image; quarantine bad ones with a reason; report near-duplicates.

    Bad files move to DATASET/quarantine/ (never deleted); reasons go to quarantine.jsonl.

    Grey, CMYK, transparent, 16-bit and EXIF-rotated images become upright RGB.
    Images over --max-image-pixels or --max-image-bytes are quarantined without being decoded.

    Example: whichbin data check datasets/main --json
    """
    from whichbin.cli.output import emit_json
    from whichbin.imageio import ImageLimits
    from whichbin.processing.check import check_dataset

    cfg = _data_config(
        config,
        min_side=min_side,
        dup_distance=dup_distance,
        max_image_pixels=max_pixels,
        max_image_bytes=max_bytes,
    )
    limits = ImageLimits(cfg.max_image_pixels, cfg.max_image_bytes)
    report = check_dataset(dataset, cfg.min_side, cfg.dup_distance, limits=limits)
    if json_out:
        emit_json(report.to_json())
        return
    typer.echo(
        f"{dataset}: {report.ok} ok, {len(report.quarantined)} quarantined "
        f"({len(report.new_quarantined)} new), {len(report.normalised)} normalised, "
        f"{len(report.duplicates)} near-duplicate groups"
    )
    for q in report.new_quarantined:
        typer.echo(f"  quarantined {q['path']}: {q['reason']}")


@app.command()
def split(
    dataset: Path = typer.Argument(..., help="Dataset directory"),
    val: float | None = typer.Option(
        None, "--val", help="Validation fraction per label \\[default: 0.15]"
    ),
    test: float | None = typer.Option(
        None, "--test", help="Test fraction per label \\[default: 0.15]"
    ),
    seed: int | None = typer.Option(None, "--seed", help="Split seed \\[default: 0]"),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Split into train/val/test and write DATASET/manifest.csv.

    Deterministic, stratified by label, near-duplicates together, stable as images are added.

    Example: whichbin data split datasets/main --val 0.15 --test 0.15 --seed 0
    """
    from whichbin.cli.output import emit_json
    from whichbin.imageio import ImageLimits
    from whichbin.processing.manifest import split_dataset

    cfg = _data_config(config, val=val, test=test, seed=seed)
    limits = ImageLimits(cfg.max_image_pixels, cfg.max_image_bytes)
    result = split_dataset(
        dataset, cfg.val, cfg.test, cfg.seed, cfg.min_side, cfg.dup_distance, limits=limits
    )
    doc = {
        "manifest": str(Path(dataset) / "manifest.csv"),
        "manifest_hash": result.manifest_hash,
        "total": len(result.rows),
        "splits": result.counts(),
        "changed": result.changed,
    }
    if json_out:
        emit_json(doc)
        return
    counts = ", ".join(f"{k} {v}" for k, v in doc["splits"].items())  # type: ignore[attr-defined]
    typer.echo(f"{doc['manifest']}: {doc['total']} images ({counts}); {result.changed} moved")
    typer.echo(f"manifest hash {result.manifest_hash}")


@app.command()
def stats(
    dataset: Path = typer.Argument(..., help="Dataset directory"),
    json_out: JsonOpt = False,
) -> None:
    """Count images per label and split, and quarantined files.

    Example: whichbin data stats datasets/main --json
    """
    from rich.console import Console
    from rich.table import Table

    from whichbin.cli.output import emit_json
    from whichbin.processing.manifest import dataset_stats

    doc = dataset_stats(dataset)
    if json_out:
        emit_json(doc)
        return
    table = Table("label", "train", "val", "test", "total", title=str(dataset))
    for label, c in doc["labels"].items():
        table.add_row(label, *(str(c[k]) for k in ("train", "val", "test", "total")))
    Console().print(table)
    typer.echo(f"total {doc['total']}, quarantined {doc['quarantined']}")
