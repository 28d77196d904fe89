"""Fuzzing every MQTT payload the edge and the display parse: deployments, corrections and
commands on the edge, events, states and DeepLens messages on the Pi. A payload is used or
dropped with a log line; the handler never raises (a raise would only be logged by the
MQTT loop, but it means an input nobody thought about)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.edge.scenes import write_scene
from tests.fuzz.strategies import FUZZ, json_values, messy_bytes
from whichbin.contract import Topics

FIELDS = ["v", "event_id", "bin", "ts", "source", "version", "sha256", "url", "id", "since"]
FIELDS += ["decision", "object", "background", "model", "approved_by"]
VALUES = st.sampled_from(
    ["compost", "landfill", "recycling", "../etc", "mallory", "", "f" * 32, "Compost"]
)


def payloads() -> st.SearchStrategy[bytes]:
    """JSON objects with the SPEC's field names and odd values, other JSON, and raw bytes."""
    objects = st.dictionaries(st.sampled_from(FIELDS), VALUES | json_values(), max_size=6)
    as_json = (objects | json_values()).map(lambda v: json.dumps(v).encode())
    return as_json | messy_bytes(20)


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture()
def logged() -> Iterator[Recorder]:
    handler = Recorder()
    root = logging.getLogger("whichbin")
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """An edge that follows deployments, with snapshots on; never started (no broker)."""
    from whichbin.config import EdgeConfig, MqttConfig
    from whichbin.edge.service import EdgeService

    tmp = tmp_path_factory.mktemp("edge")
    return EdgeService(
        EdgeConfig(
            source=str(write_scene(tmp / "frames", ["landfill"])),
            device_id="fuzz",
            models_dir=tmp / "models",
            data_dir=tmp / "data",
        ),
        MqttConfig(url="mqtt://127.0.0.1:1"),
    )


@FUZZ
@given(payload=payloads())
def test_edge_corrections(service: Any, logged: Recorder, payload: bytes) -> None:
    logged.records.clear()
    service.corrections.handle(service.topics.correction, payload)
    corrections = Path(service.snapshots.root) / "corrections"
    if corrections.is_dir():  # only real bins ever become folders (training labels)
        folders = {p.name for p in corrections.iterdir() if p.is_dir()}
        assert folders <= {"compost", "landfill", "recycling"}


@FUZZ
@given(payload=payloads())
def test_edge_deployments(service: Any, logged: Recorder, payload: bytes) -> None:
    logged.records.clear()
    follower = service.follower
    for topic in (follower.topics.deployment, follower.topics.fleet_deployment):
        follower.on_message(topic, payload)
    wanted = follower.wanted()
    if wanted is None:
        assert not payload.strip() or logged.records
    else:
        assert isinstance(wanted.version, str) and isinstance(wanted.sha256, str)


@FUZZ
@given(payload=payloads())
def test_edge_commands(service: Any, payload: bytes) -> None:
    topics = Topics("fuzz")
    for name in service.commands.commands:  # pause, resume, reload
        assert service.commands.handle(name, topics.command(name), payload) in (True, False)
    service.runner.resume()


@FUZZ
@given(payload=payloads() | payloads().map(lambda b: b.decode("utf-8", "replace")))
def test_display_messages(logged: Recorder, payload: bytes | str) -> None:
    from whichbin.pi.app import DisplayApp

    app = DisplayApp()
    app.set_connected(True, 0.0)
    for handler in (app.on_event, app.on_state, app.on_deeplens):
        logged.records.clear()
        shown = handler(payload, 0.0)
        assert shown is None or isinstance(shown, str)
        if shown is None and handler != app.on_state:  # a state after an event is moot
            assert logged.records  # a dropped message is logged
    assert app.tick(1.0) in {"compost", "landfill", "recycling", "unsure", "idle"}
