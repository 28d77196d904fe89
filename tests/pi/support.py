"""Helpers shared by the pi tests: a real MQTT publisher and SPEC events."""

from __future__ import annotations

import uuid

from whichbin.config import MqttConfig, PiConfig
from whichbin.contract import Event, LabelP, ModelRef, RulesRef, Topics, iso, utc_now
from whichbin.messaging.mqtt import MqttClient


def make_event(device: str, bin_: str, decision: str = "decided") -> Event:
    return Event(
        ts=iso(utc_now()),
        device=device,
        bin=bin_,
        label=bin_,
        confidence=0.9,
        decision=decision,  # type: ignore[arg-type]
        top_k=[LabelP(label=bin_, p=0.9)],
        model=ModelRef(version="test/1", sha256="0" * 64),
        rules=RulesRef(name="test", version="1"),
    )


def connect(url: str) -> MqttClient:
    c = MqttClient(url, f"test-pub-{uuid.uuid4().hex[:8]}")
    assert c.start(wait=10), "publisher could not connect"
    return c


def publish_event(url: str, event: Event) -> bool:
    """Publish ``event`` on its device's event topic from a fresh client; True once the
    broker acknowledged it."""
    pub = connect(url)
    try:
        return pub.publish_confirmed(Topics(event.device).event, event.to_json())
    finally:
        pub.stop()


def display_config(url: str, device: str, **pi: object) -> tuple[MqttConfig, PiConfig]:
    """The ``mqtt`` and ``pi`` sections for a display of ``device`` (no outbox unless
    ``data_dir`` is given)."""
    return MqttConfig(url=url), PiConfig.model_validate(
        {"device_id": device, "data_dir": None, **pi}
    )
