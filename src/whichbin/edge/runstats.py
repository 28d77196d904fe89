"""What an edge run did: frame, classification and event counts, rates and latencies."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RunStats"]


def _percentiles(values: deque[float] | list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(arr, 50)), 2),
        "p99": round(float(np.percentile(arr, 99)), 2),
    }


@dataclass
class RunStats:
    """What a run did (the CLI prints it at exit)."""

    frames: int = 0
    classified: int = 0
    events: int = 0
    errors: int = 0
    bins: deque[str] = field(default_factory=lambda: deque(maxlen=10_000))  # the latest items' bins
    counts: dict[str, int] = field(default_factory=dict)  # per bin, this run
    frame_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))  # capture→done
    event_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))  # capture→queued
    event_ids: deque[str] = field(default_factory=lambda: deque(maxlen=10_000))
    # (event id, monotonic capture time of its decision frame): end-to-end latency figures
    event_captured: deque[tuple[str, float]] = field(default_factory=lambda: deque(maxlen=10_000))
    dropped: int = 0  # frames the capture thread skipped (latest frame wins)
    first_frame_at: float | None = None  # monotonic: the first frame's capture
    last_frame_at: float | None = None  # monotonic: the last frame done

    @property
    def fps(self) -> float | None:
        """Frames processed per second, first capture to last frame done."""
        if self.first_frame_at is None or self.last_frame_at is None or self.frames < 2:
            return None
        span = self.last_frame_at - self.first_frame_at
        return round(self.frames / span, 2) if span > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "classified": self.classified,
            "events": self.events,
            "errors": self.errors,
            "dropped": self.dropped,
            "fps": self.fps,
            "bins": list(self.bins),
            "counts": dict(self.counts),
            "frame_latency_ms": _percentiles(self.frame_ms),
            "event_latency_ms": _percentiles(self.event_ms),
        }
