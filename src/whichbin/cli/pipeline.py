"""Placeholder until the pipeline command group lands."""

import typer

app = typer.Typer(help="pipeline commands")
