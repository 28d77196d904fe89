"""Capture on its own thread, so reading and decoding overlap classification.

``ThreadedSource`` wraps any ``FrameSource`` and reads it on a background thread:

* ``drop=True`` (cameras, streams): **latest frame wins**. The reader keeps only the
  newest frame; when classification is slower than the camera the frames in between are
  skipped (and counted in ``dropped``), so the edge always looks at *now*, not at a
  growing backlog.
* ``drop=False`` (files, folders): a small bounded queue. Every frame is processed and a
  slow consumer slows the playback down instead of skipping (a recording is replayed
  completely, which is what tests and benchmarks need).

When the inner source raises, or a live source ends, the reader re-opens it with
``reopen()`` after a back-off (0.5 s doubling to ``max_backoff``) and carries on.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from whichbin.edge.sources import Frame, FrameSource

logger = logging.getLogger(__name__)


class ThreadedSource:
    """A FrameSource read ahead on a background thread (see the module docstring).

    Args:
        source: the source to read.
        drop: keep only the latest frame (True) or queue up to ``queue_size`` (False).
        reopen: builds a fresh source after an error (or after a live source ended);
            without it an erroring source is retried as it is.
        restart_on_end: re-open instead of ending when the source returns None.
        queue_size: frames buffered when not dropping.
        min_backoff: first wait before re-opening, doubled up to ``max_backoff``.
    """

    def __init__(
        self,
        source: FrameSource,
        *,
        drop: bool = True,
        reopen: Callable[[], FrameSource] | None = None,
        restart_on_end: bool = False,
        queue_size: int = 2,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.source = source
        self.drop = drop
        self.live = bool(getattr(source, "live", False))
        self._reopen = reopen
        self._restart_on_end = restart_on_end
        self._queue: deque[Frame] = deque()
        self._size = max(1, queue_size)
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._ended = False
        self._thread: threading.Thread | None = None
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.captured = 0  # frames read from the inner source
        self.dropped = 0  # frames replaced before anyone read them
        self.errors = 0  # inner read failures
        self.reopened = 0  # times the inner source was rebuilt

    # -- FrameSource --------------------------------------------------------------------
    def read(self) -> Frame | None:
        """The next frame (the newest one when dropping); None once ended or closed."""
        self._ensure_started()
        with self._cond:
            while True:
                if self._queue:
                    frame = self._queue.popleft()
                    self._cond.notify_all()
                    return frame
                if self._ended or self._closed.is_set():
                    return None
                self._cond.wait(0.5)

    def close(self) -> None:
        """Stop reading; a blocked ``read`` returns None. Safe from any thread."""
        self._closed.set()
        self.source.close()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float = 5.0) -> None:
        """Wait for the reader thread after ``close()``."""
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the reader thread --------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="whichbin-capture", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        backoff = self.min_backoff
        while not self._closed.is_set():
            try:
                frame = self.source.read()
            except Exception:
                self.errors += 1
                logger.exception("frame source failed; re-opening in %.1f s", backoff)
                if not self._wait_and_reopen(backoff):
                    break
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if frame is None:
                if self._closed.is_set():
                    break
                if self._restart_on_end:
                    logger.warning("frame source ended; re-opening in %.1f s", backoff)
                    if not self._wait_and_reopen(backoff):
                        break
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                break
            backoff = self.min_backoff
            self.captured += 1
            self._put(frame)
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self.drop:
                self.dropped += len(self._queue)
                self._queue.clear()
            else:
                while len(self._queue) >= self._size and not self._closed.is_set():
                    self._cond.wait(0.5)
            self._queue.append(frame)
            self._cond.notify_all()

    def _wait_and_reopen(self, backoff: float) -> bool:
        """Back off, then rebuild the source (if we can); False when closed meanwhile."""
        if self._closed.wait(backoff):
            return False
        if self._reopen is None:
            return True
        try:
            fresh = self._reopen()
        except Exception as e:
            logger.warning("cannot re-open the frame source yet (%s)", e)
            return not self._closed.is_set()
        old, self.source = self.source, fresh
        try:
            old.close()
        except Exception:
            logger.debug("closing the old frame source failed", exc_info=True)
        self.reopened += 1
        if self._closed.is_set():  # closed while re-opening: release the new one too
            fresh.close()
            return False
        return True
