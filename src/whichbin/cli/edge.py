"""Placeholder until the edge command group lands."""

import typer

app = typer.Typer(help="edge commands")
