"""Steps cached by the hash of their inputs and parameters.

A step's output lives in ``<work>/steps/<name>/<key>/`` with a ``result.json`` written
last, so a crash mid-step leaves no half result and the re-run redoes just that step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def hash_key(parts: Any) -> str:
    """Stable short hash of JSON-able parts."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class StepOutcome:
    name: str
    key: str
    dir: Path
    result: dict[str, Any]
    cached: bool
    seconds: float


class StepCache:
    """Runs ``fn(out_dir) -> dict`` once per (name, key); later calls load the result."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.outcomes: list[StepOutcome] = []

    def run(self, name: str, parts: Any, fn: Callable[[Path], dict[str, Any]]) -> StepOutcome:
        key = hash_key(parts)
        final = self.root / name / key
        t0 = time.perf_counter()
        done = final / "result.json"
        if done.is_file():
            result = json.loads(done.read_text())
            outcome = StepOutcome(name, key, final, result, True, time.perf_counter() - t0)
            logger.info("step %s: cached (%s)", name, key)
        else:
            tmp = self.root / name / f".{key}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            logger.info("step %s: running (%s)", name, key)
            result = fn(tmp)
            (tmp / "result.json").write_text(json.dumps(result, indent=1, default=str))
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            outcome = StepOutcome(name, key, final, result, False, time.perf_counter() - t0)
            logger.info("step %s: done in %.1fs", name, outcome.seconds)
        self.outcomes.append(outcome)
        return outcome

    def record(self, name: str, seconds: float, result: dict[str, Any] | None = None) -> None:
        """Record an uncached step's timing (steps that are incremental inside)."""
        self.outcomes.append(StepOutcome(name, "-", self.root, result or {}, False, seconds))

    def timings(self) -> dict[str, dict[str, Any]]:
        return {o.name: {"seconds": round(o.seconds, 2), "cached": o.cached} for o in self.outcomes}
