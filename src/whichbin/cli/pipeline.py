"""``whichbin pipeline``: run processing → training → evaluation → gate → registration."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from whichbin.cli.options import ConfigOpt, JsonOpt, RegistryOpt, load_config
from whichbin.cli.output import emit_json

if TYPE_CHECKING:
    from whichbin.pipelines.local import PipelineResult

app = typer.Typer(
    help="Run the training pipeline.\n\nExample: whichbin pipeline run --data photos/",
    no_args_is_help=True,
)

GATE_FAILED = 3  # SPEC: the gate failed (the summary is still printed); 1 stays a user error


@app.command("run")
def run(
    config: ConfigOpt = None,
    data: list[Path] = typer.Option(
        [], "--data", "-d", help="Image folder, .lst, .csv or dataset dir; repeatable"
    ),
    registry: RegistryOpt = None,
    work_dir: Path | None = typer.Option(None, "--work-dir", help="Cache and outputs"),
    base_model: str | None = typer.Option(
        None,
        "--base-model",
        help="Retrain only the head on this bundle's backbone ('default' = bundled); no torch",
    ),
    no_register: bool = typer.Option(
        False,
        "--no-register",
        help="Evaluate and gate (against the registry's approved model when there is one), "
        "register nothing",
    ),
    as_json: JsonOpt = False,
) -> None:
    """Run the whole pipeline; steps whose inputs did not change are reused.

    Exit code 3 when the quality gate failed (the summary or JSON is still printed).

    Example: whichbin pipeline run --data ../shared/data/trashnet --data ../shared/data/extra

    Head-only retrain on a Pi (numpy + onnx, no torch), adapting the bundled model to your
    own photos: whichbin pipeline run --base-model default --data my-photos/
    """
    from whichbin.pipelines.local import run_pipeline

    settings = load_config(
        config,
        {
            "pipeline.work_dir": work_dir,
            "pipeline.training.base_model": base_model,
        },
    )
    cfg = settings.pipeline
    sources = [Path(d) for d in data] or [Path(s) for s in cfg.data.sources]
    result = run_pipeline(cfg, sources, registry, register=not no_register)
    if as_json:
        emit_json(result.to_json())
    else:
        _print_summary(result)
    if not result.passed:
        raise typer.Exit(GATE_FAILED)


def _print_summary(result: PipelineResult) -> None:
    """The run's summary on stdout (logs stay on stderr)."""
    from rich.console import Console

    out = Console(soft_wrap=True)  # a path is never broken mid-word
    m = result.metrics
    colour = "green" if result.passed else "red"
    out.print(
        f"[bold]{result.version or 'candidate'}[/]: gate [bold {colour}]{result.gate}[/], "
        f"status {result.status}"
    )
    out.print(
        f"test accuracy {m.get('accuracy', 0):.3f}, bin accuracy {m.get('bin_accuracy', 0):.3f}, "
        f"macro-F1 {m.get('macro_f1', 0):.3f}, bin recall {m.get('bin_recall')}",
        markup=False,
    )
    for source, sm in (m.get("per_source") or {}).items():
        out.print(
            f"  {source}: {sm['n']} test images, bin accuracy {sm['bin_accuracy']:.3f}, "
            f"bin recall {sm['bin_recall']}",
            markup=False,
        )
    for reason in result.reasons:
        out.print(f"  [red]✗[/] {escape(reason)}")
    if result.gate_this_run is not None:
        out.print(
            f"[yellow]note:[/] {result.version} is registered with gate {result.gate}; this "
            f"run's gate config gives {result.gate_this_run['gate']} (not recorded)"
        )
        for reason in result.gate_this_run["reasons"]:
            out.print(f"  [yellow]✗[/] {escape(reason)}")
    for step, t in result.timings.items():
        out.print(f"  {step:<18} {t['seconds']:>7.1f}s{' (cached)' if t['cached'] else ''}")
    out.print(f"report: {result.report}", markup=False, highlight=False)
