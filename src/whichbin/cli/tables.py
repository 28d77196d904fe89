"""Rich tables the CLI prints (the registry's list, show and devices views)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich import box
from rich.table import Table

from whichbin.registry.base import ModelVersion, Pin


def print_whole(table: Table, at_least: int = 0) -> None:
    """Print a table as wide as it needs, whatever the terminal: a cut figure or id is worse
    than a long line."""
    from rich.console import Console

    natural = Console(width=1000).measure(table).maximum
    Console(width=max(natural, at_least), highlight=False).print(table)


def per_source_table(per_source: dict) -> Table:
    """The test split per data source, one row each (``--json`` keeps the full data)."""
    from whichbin.evaluation.per_source import PER_SOURCE_COLUMNS, per_source_rows

    table = Table(
        title="Test split per data source (%: accuracy by label and by bin, recall per bin, "
        "share decided and decided correct)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for i, col in enumerate(PER_SOURCE_COLUMNS):
        table.add_column(
            col,
            justify="left" if i in (0, 4) else "right",
            no_wrap=True,
        )
    for row in per_source_rows(per_source):
        table.add_row(*row)
    return table


def pins_table(pins: Iterable[Pin]) -> Table:
    """Devices pinned to a version, one row each."""
    table = Table(title="Pinned devices", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("device", "version", "pinned by", "at", "reason"):
        table.add_column(col, overflow="fold")
    for p in pins:
        table.add_row(p.device, p.version, p.by, p.at, p.reason)
    return table


def versions_table(versions: Sequence[ModelVersion], live: set[str], wide: bool) -> Table:
    """Model versions with headline metrics, gate and status; ``live`` ones marked; the
    creation date only when ``wide``."""
    from whichbin.registry import headline_metrics

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("version", no_wrap=True)
    if wide:
        table.add_column("created", no_wrap=True)
    for col in ("acc.", "bin", "F1"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("gate", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("approved by", overflow="fold")
    for v in versions:
        m = headline_metrics(v.metrics)
        gate = "[green]passed[/]" if v.gate == "passed" else "[red]failed[/]"
        metrics = [_fmt(m["accuracy"]), _fmt(m["bin_accuracy"]), _fmt(m["macro_f1"])]
        created = [v.created[:16].replace("T", " ")] if wide else []
        status = v.status.value + (" [bold green]● live[/]" if v.id in live else "")
        table.add_row(v.id, *created, *metrics, gate, status, v.approved_by or "")
    table.caption = (
        "acc. = label accuracy, bin = bin accuracy, F1 = label macro-F1; "
        "live = the current approval, what the fleet runs"
    )
    return table


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
