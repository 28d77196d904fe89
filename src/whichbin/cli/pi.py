"""Placeholder until the pi command group lands."""

import typer

app = typer.Typer(help="pi commands")
