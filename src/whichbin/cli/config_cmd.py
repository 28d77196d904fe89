"""``whichbin config check``: validate a config file against the one config tree."""

from __future__ import annotations

from pathlib import Path

import typer

from whichbin.cli.options import JsonOpt
from whichbin.cli.output import emit_json, err_console

config_app = typer.Typer(
    help="Configuration tools.\n\nExample: whichbin config check whichbin.yaml",
    no_args_is_help=True,
)


@config_app.command("check")
def check(
    path: Path = typer.Argument(..., help="YAML config file"),
    as_json: JsonOpt = False,
) -> None:
    """Validate a YAML config; errors name the key. With --json, prints the effective config.

    Example: whichbin config check pipeline.yaml
    """
    from whichbin.config import load_settings

    settings = load_settings(path)
    if as_json:
        emit_json(settings.model_dump(mode="json"))
    else:
        err_console.print(f"{path}: ok")


def register(app: typer.Typer) -> None:
    """Add the ``config`` group to the root app."""
    app.add_typer(config_app, name="config")
