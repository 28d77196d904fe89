"""Placeholder until the data command group lands."""

import typer

app = typer.Typer(help="data commands")
