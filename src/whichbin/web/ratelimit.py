"""Failed-login throttling: a sliding window per key (client address, user name). The
caller passes the time in; one lock guards the table (the server's worker threads share
it)."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable


class FailureLimiter:
    """At most ``attempts`` failures per key within ``window`` seconds.

    Only failures are counted, so a user who types the password right is never slowed
    down, while guessing stops after ``attempts`` tries a window (per client address and
    per user name: spreading guesses over many names or many addresses does not help).
    """

    def __init__(self, attempts: int, window: float, max_keys: int = 10_000) -> None:
        self.attempts = attempts
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, keys: Iterable[str], now: float) -> int:
        """Seconds until any of ``keys`` may try again; 0: go ahead."""
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.attempts:
                    wait = max(wait, times[0] + self.window - now)
        return max(1, math.ceil(wait)) if wait > 0 else 0

    def fail(self, keys: Iterable[str], now: float) -> None:
        """Record one failure against each of ``keys``."""
        with self._lock:
            if len(self._failures) >= self.max_keys:  # forget keys whose window has passed
                for key in [k for k in self._failures if not self._recent(k, now)]:
                    del self._failures[key]
                while len(self._failures) >= self.max_keys:  # still full: drop the oldest
                    del self._failures[next(iter(self._failures))]
            for key in keys:
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times
