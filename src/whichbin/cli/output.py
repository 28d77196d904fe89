"""Printing helpers for the CLI: JSON on stdout, everything else on stderr."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from rich.console import Console

err_console = Console(stderr=True)


def emit_json(obj: Any) -> None:
    """Exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def emit_jsonl(obj: Any) -> None:
    """One JSON Lines record on stdout."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def setup_logging(verbose: bool = False) -> None:
    """Logs go to stderr through rich."""
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
        force=True,
    )
