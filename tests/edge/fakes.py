"""In-memory stand-ins for the edge tests."""

from __future__ import annotations

import json


class InMemoryPublisher:
    """A Publisher that keeps what it was given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, int, bool]] = []

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> bool:
        text = payload.decode() if isinstance(payload, bytes) else payload
        self.messages.append((topic, text, qos, retain))
        return True

    def on(self, topic: str) -> list[dict]:
        return [json.loads(p) for t, p, _, _ in self.messages if t == topic]


class ScriptedSource:
    """A camera the test directs: the empty scene at ``fps`` until ``show()`` queues items.

    ``show("compost")`` puts an item of that bin's colour in view for ``frames`` frames and
    then takes it away again; ``shown`` counts frames that carried an item.
    """

    def __init__(self, fps: float = 100.0, frames: int = 8) -> None:
        import threading

        self.period = 1.0 / fps
        self.frames = frames
        self.queue: list = []
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.i = 0
        self.shown = 0

    def show(self, bin_: str) -> None:
        from tests.edge.scenes import scene_frame
        from tests.helpers import COLORS

        with self.lock:
            seed = 10_000 + len(self.queue) + self.i
            self.queue += [scene_frame(COLORS[bin_], seed + k) for k in range(self.frames)]
            self.queue += [scene_frame(None, seed + 100 + k) for k in range(6)]

    @property
    def idle(self) -> bool:
        with self.lock:
            return not self.queue

    def read(self):  # noqa: ANN201
        from tests.edge.scenes import scene_frame
        from whichbin.edge.sources import Frame

        if self.closed.wait(self.period):
            return None
        with self.lock:
            image = self.queue.pop(0) if self.queue else scene_frame(None, self.i)
        self.i += 1
        return Frame(image, self.i * self.period, self.i)

    def close(self) -> None:
        self.closed.set()
