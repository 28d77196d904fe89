"""The capture thread: latest frame wins, no frame lost for files, errors and ends reconnect."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.edge.scenes import scene_frame
from tests.helpers import COLORS
from whichbin.edge.capture import ThreadedSource
from whichbin.edge.sources import CaptureSource, Frame, create_source


class CountingSource:
    """Frames numbered 0, 1, 2, … as fast as asked (or ``period`` apart); ends after ``n``."""

    def __init__(self, n: int, period: float = 0.0, live: bool = False) -> None:
        self.n, self.period, self.live = n, period, live
        self.i = 0
        self.closed = False

    def read(self) -> Frame | None:
        if self.closed or self.i >= self.n:
            return None
        if self.period:
            time.sleep(self.period)
        self.i += 1
        return Frame(np.full((4, 4, 3), self.i - 1, np.uint8), self.i - 1, self.i - 1)

    def close(self) -> None:
        self.closed = True


def drain(src: ThreadedSource, delay: float = 0.0) -> list[int]:
    out = []
    while (f := src.read()) is not None:
        out.append(f.index)
        time.sleep(delay)
    return out


def test_latest_frame_wins_when_the_consumer_is_slow() -> None:
    # A 200 fps camera and a consumer taking 20 ms a frame: most frames are skipped,
    # and what is read is always newer than what was read before.
    src = ThreadedSource(CountingSource(60, period=0.005, live=True), drop=True)
    seen = drain(src, delay=0.02)
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert len(seen) < 40 and src.dropped == 60 - len(seen)
    assert seen[-1] >= 55  # the newest frames, not a backlog


def test_no_frame_is_lost_from_a_file_even_with_a_slow_consumer() -> None:
    src = ThreadedSource(CountingSource(30), drop=False, queue_size=2)
    assert drain(src, delay=0.002) == list(range(30))
    assert src.dropped == 0


def test_capture_overlaps_processing() -> None:
    # 20 frames that take 10 ms each to capture and 10 ms each to process: about 200 ms
    # when overlapped, about 400 ms in sequence.
    src = ThreadedSource(CountingSource(20, period=0.01), drop=False)
    t0 = time.monotonic()
    assert len(drain(src, delay=0.01)) == 20
    assert time.monotonic() - t0 < 0.35


class FlakySource:
    """Raises on its ``fail_at``-th read; a broken camera driver."""

    def __init__(self, fail_at: int) -> None:
        self.inner = CountingSource(100, live=True)
        self.fail_at = fail_at
        self.reads = 0
        self.live = True

    def read(self) -> Frame | None:
        self.reads += 1
        if self.reads == self.fail_at:
            raise OSError("device fell off the bus")
        return self.inner.read()

    def close(self) -> None:
        self.inner.close()


def test_a_source_that_errors_is_reopened() -> None:
    opened: list[FlakySource] = [FlakySource(fail_at=3)]

    def reopen() -> FlakySource:
        opened.append(FlakySource(fail_at=0))
        return opened[-1]

    src = ThreadedSource(opened[0], drop=False, reopen=reopen, min_backoff=0.01)
    frames = [src.read() for _ in range(6)]
    src.close()
    assert all(f is not None for f in frames)
    assert src.errors == 1 and src.reopened == 1 and len(opened) == 2
    assert opened[0].inner.closed  # the broken one was released
    assert [f.index for f in frames if f] == [0, 1, 0, 1, 2, 3]  # the new source restarts
    assert src.read() is None


def test_a_live_source_that_ends_is_reopened_and_close_unblocks() -> None:
    made = []

    def reopen() -> CountingSource:
        made.append(CountingSource(3, live=True))
        return made[-1]

    src = ThreadedSource(
        CountingSource(3, live=True),
        drop=False,
        reopen=reopen,
        restart_on_end=True,
        min_backoff=0.01,
    )
    assert [src.read().index for _ in range(9)] == [0, 1, 2] * 3  # type: ignore[union-attr]
    assert len(made) >= 2
    closer = threading.Timer(0.1, src.close)
    closer.start()
    while src.read() is not None:
        pass  # keeps reading re-opened sources until close() ends it
    src.join(2)


@pytest.fixture()
def http_clip(tmp_path: Path) -> Iterator[str]:
    """A 10-frame MJPEG .avi served over HTTP: a stream that ends (a camera rebooting)."""
    import cv2

    writer = cv2.VideoWriter(
        str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (96, 72)
    )
    for i in range(10):
        writer.write(np.ascontiguousarray(scene_frame(COLORS["recycling"], i)[..., ::-1]))
    writer.release()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
    server.shutdown()
    server.server_close()


def test_an_http_stream_that_ends_reconnects(http_clip: str) -> None:
    src = create_source(http_clip)
    assert isinstance(src, CaptureSource) and src.live
    threaded = ThreadedSource(src, drop=False)
    try:
        frames = [threaded.read() for _ in range(15)]  # more than the clip holds
    finally:
        threaded.close()
    assert all(f is not None and f.image.shape == (72, 96, 3) for f in frames)
    assert frames[-1].image[36, 48, 2] > 150  # type: ignore[union-attr]  # blue, RGB order
