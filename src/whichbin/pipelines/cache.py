"""Steps cached by the hash of their inputs and parameters, and a bundle's outputs cached
per image.

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

import numpy as np

from whichbin.vector_cache import VectorCache

logger = logging.getLogger(__name__)


def graph_content_id(onnx_path: Path) -> str:
    """sha256 of an ONNX graph's computation (nodes, weights, inputs, outputs), leaving out
    graph names and metadata, which do not change a result."""
    import onnx

    g = onnx.load(str(onnx_path)).graph
    h = hashlib.sha256()
    for part in (*g.node, *g.initializer, *g.input, *g.output):
        h.update(part.SerializeToString())
    return h.hexdigest()


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


class LogitsCache(VectorCache):
    """(model key, image sha256) → a bundle's raw logits, in SQLite.

    The model key is a bundle's sha256, so an image is run through a bundle once: a new
    test photo costs one forward pass of the approved model, not the whole split. Logits,
    not probabilities, are kept: the temperature is read from the bundle when they are used.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, "bundle_logits", "model")


def cached_logits(
    cache: LogitsCache,
    model: str,
    shas: list[str],
    paths: list[Path],
    compute: Callable[[list[Path]], np.ndarray],
) -> tuple[np.ndarray, int]:
    """Logits [N, labels] for the images, running ``compute`` only on the uncached ones.

    Returns the logits (in the order of ``shas``) and how many images were computed.
    """
    have = cache.get_many(model, shas)
    todo = {s: p for s, p in zip(shas, paths, strict=True) if s not in have}
    if todo:
        logger.info(
            "%s: computing logits of %d images (%d cached)", model[:12], len(todo), len(have)
        )
        new = compute(list(todo.values()))
        fresh = dict(zip(todo, new, strict=True))
        cache.put_many(model, fresh)
        have.update({s: np.asarray(v, np.float32) for s, v in fresh.items()})
    if not shas:
        return np.zeros((0, 0), np.float32), 0
    return np.stack([have[s] for s in shas]), len(todo)
