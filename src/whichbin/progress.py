"""Progress for long steps, always on stderr: rich bars on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

logger = logging.getLogger(__name__)

Advance = Callable[[int], None]


class Reporter(Protocol):
    """``with reporter("hashing", total) as advance: advance(1)``."""

    def __call__(self, description: str, total: int) -> AbstractContextManager[Advance]: ...


@contextmanager
def silent_reporter(description: str, total: int) -> Iterator[Advance]:
    """Reports nothing (tests, nested steps)."""
    yield lambda n: None


@contextmanager
def log_reporter(description: str, total: int) -> Iterator[Advance]:
    """Log lines: progress every 10 % of a long step, and its total time."""
    start = time.monotonic()
    done = [0, 0]  # items, last tenth logged

    def advance(n: int) -> None:
        done[0] += n
        tenth = 10 * done[0] // max(total, 1)
        if total > 500 and tenth > done[1]:
            done[1] = tenth
            logger.info("%s: %d/%d", description, done[0], total)

    yield advance
    if total > 50:
        logger.info("%s: %d items in %.1f s", description, total, time.monotonic() - start)


@contextmanager
def rich_reporter(description: str, total: int) -> Iterator[Advance]:
    """A transient rich progress bar on stderr."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    if total < 50:
        yield lambda n: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def default_reporter() -> Reporter:
    """rich on an interactive stderr, log lines otherwise."""
    return rich_reporter if sys.stderr.isatty() else log_reporter
