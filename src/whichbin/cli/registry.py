"""Placeholder until the registry command group lands."""

import typer

app = typer.Typer(help="registry commands")
