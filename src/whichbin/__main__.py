"""``python -m whichbin`` runs the CLI."""

from whichbin.cli.main import app

app()
