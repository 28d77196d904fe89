"""``whichbin``: the command-line entry point. Each command group lives in its own module."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from whichbin.errors import WhichbinError


class _Group(TyperGroup):
    """Turns every WhichbinError into one line on stderr and exit code 1 (SPEC)."""

    def invoke(self, ctx: Any) -> Any:  # click's Context, vendored by typer >= 0.23
        try:
            return super().invoke(ctx)
        except WhichbinError as e:
            # typer ≥0.23 vendors click: a click.ClickException escapes as a traceback.
            typer.echo(f"Error: {e}", err=True)
            raise typer.Exit(1) from e


app = typer.Typer(
    cls=_Group,
    help="whichbin: teach a camera which bin an item belongs in.\n\n"
    "Example: whichbin classify photo.jpg",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging")) -> None:
    from whichbin.cli.output import setup_logging

    setup_logging(verbose)


def _register() -> None:
    from whichbin.cli import (
        certs,
        classify,
        config_cmd,
        data,
        edge,
        keys,
        pi,
        pipeline,
        pipeline_steps,
        registry,
        registry_watch,
        users,
        web,
    )

    for module in (classify, web, config_cmd):
        module.register(app)
    app.add_typer(data.app, name="data")
    app.add_typer(pipeline.app, name="pipeline")
    pipeline_steps.register(pipeline.app)
    app.add_typer(registry.app, name="registry")
    registry_watch.register(registry.app)
    app.add_typer(edge.app, name="edge")
    app.add_typer(pi.app, name="pi")
    app.add_typer(keys.app, name="keys")
    app.add_typer(certs.app, name="certs")
    users.register(app)


_register()
