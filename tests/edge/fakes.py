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
