"""Home Assistant MQTT discovery: payloads against the documented schema; publish and remove."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import wait_for
from tests.edge.conftest import StartEdge
from tests.edge.scenes import write_scene
from tests.helpers import Broker, Recorder
from whichbin.cli.main import app
from whichbin.contract import Event, State, Topics
from whichbin.edge.homeassistant import (
    counters_topic,
    discovery_messages,
    node_id,
    removal_topics,
    snapshot_topic,
)

# https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery :
# <discovery_prefix>/<component>/[<node_id>/]<object_id>/config, ids of [a-zA-Z0-9_-].
TOPIC = re.compile(
    r"homeassistant/(sensor|event|button|image)/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/config"
)
COMMON = {
    "availability_topic",
    "payload_available",
    "payload_not_available",
    "device",
    "origin",
    "unique_id",
    "name",
    "icon",
    "object_id",
    "enabled_by_default",
    "entity_category",
    "json_attributes_topic",
    "json_attributes_template",
    "encoding",
}
# Keys each platform's documentation lists (sensor.mqtt, event.mqtt, button.mqtt, image.mqtt);
# discovery rejects a config with a key its platform does not know.
ALLOWED = {
    "sensor": COMMON
    | {
        "state_topic",
        "value_template",
        "device_class",
        "state_class",
        "unit_of_measurement",
        "options",
        "qos",
        "expire_after",
        "force_update",
        "suggested_display_precision",
    },
    "event": COMMON | {"state_topic", "event_types", "value_template", "device_class", "qos"},
    "button": COMMON | {"command_topic", "payload_press", "device_class", "qos", "retain"},
    "image": COMMON | {"image_topic", "content_type", "image_encoding", "url_topic"},
}
REQUIRED = {
    "sensor": {"state_topic"},
    "event": {"state_topic", "event_types"},
    "button": {"command_topic"},
    "image": {"image_topic"},
}
DEVICE_KEYS = {"identifiers", "name", "manufacturer", "model", "sw_version"}


def test_discovery_payloads_follow_the_documented_schema() -> None:
    topics = Topics("kitchen.cam:1")
    messages = discovery_messages("kitchen.cam:1", sw_version="0.1.0", snapshots=True)
    components = {m.topic.split("/")[1] for m in messages}
    assert components == {"sensor", "event", "button", "image"}
    unique_ids = set()
    for m in messages:
        assert TOPIC.fullmatch(m.topic), m.topic
        component, node, object_id = m.topic.split("/")[1:4]
        assert node == node_id("kitchen.cam:1") == "whichbin_kitchen_cam_1"
        p = m.payload
        assert set(p) <= ALLOWED[component], set(p) - ALLOWED[component]
        assert REQUIRED[component] <= set(p)
        assert {"device", "unique_id", "availability_topic"} <= set(p)
        assert p["unique_id"] == f"{node}_{object_id}"
        unique_ids.add(p["unique_id"])
        assert p["availability_topic"] == topics.availability
        assert (p["payload_available"], p["payload_not_available"]) == ("online", "offline")
        assert set(p["device"]) <= DEVICE_KEYS and p["device"]["identifiers"] == [node]
        json.dumps(p)  # serialisable
    assert len(unique_ids) == len(messages)
    by_id = {m.topic.split("/")[3]: m.payload for m in messages}
    assert by_id["bin"]["state_topic"] == topics.state
    assert set(by_id["bin"]["options"]) == {"compost", "landfill", "recycling", "idle", "unsure"}
    assert by_id["decision"]["state_topic"] == topics.event
    assert set(by_id["decision"]["event_types"]) == {"compost", "landfill", "recycling", "unsure"}
    for key in ("compost", "landfill", "recycling", "unsure", "total"):
        counter = by_id[f"{key}_count"]
        assert counter["state_topic"] == counters_topic(topics)
        assert counter["state_class"] == "total_increasing"
    for command in ("pause", "resume", "reload"):
        assert by_id[command]["command_topic"] == topics.command(command)
    assert by_id["snapshot"]["image_topic"] == snapshot_topic(topics)
    # Without published snapshots there is no image entity; removal covers every entity.
    plain = discovery_messages("kitchen.cam:1")
    assert "image" not in {m.topic.split("/")[1] for m in plain}
    assert set(removal_topics("kitchen.cam:1")) == {m.topic for m in messages}


def test_value_templates_render_our_payloads() -> None:
    """Render the templates as Home Assistant would (Jinja2 plus its ``to_json`` filter)."""
    jinja2 = pytest.importorskip("jinja2", reason="needs jinja2 (the dev extra)")
    env = jinja2.Environment()
    env.filters["to_json"] = json.dumps
    by_id = {m.topic.split("/")[3]: m.payload for m in discovery_messages("cam1")}

    def render(template: str, payload: str) -> str:
        return env.from_string(template).render(value=payload, value_json=json.loads(payload))

    event = Event.model_validate(
        {
            "ts": "2026-01-01T00:00:00Z",
            "device": "cam1",
            "bin": "recycling",
            "label": "plastic",
            "confidence": 0.93,
            "decision": "decided",
            "top_k": [{"label": "plastic", "p": 0.93}],
            "model": {"version": "m/1", "sha256": "ab" * 32},
            "rules": {"name": "r", "version": "1"},
        }
    )
    ha_event = json.loads(render(by_id["decision"]["value_template"], event.to_json()))
    assert ha_event["event_type"] == "recycling" and ha_event["id"] == event.id
    unsure = event.model_copy(update={"decision": "unsure"})
    ha_unsure = json.loads(render(by_id["decision"]["value_template"], unsure.to_json()))
    assert ha_unsure["event_type"] == "unsure" and ha_unsure["bin"] == "recycling"
    state = State(bin="compost", since="2026-01-01T00:00:00Z").to_json()
    assert render(by_id["bin"]["value_template"], state) == "compost"
    counters = json.dumps(
        {"v": 1, "compost": 2, "landfill": 0, "recycling": 5, "unsure": 1, "total": 8}
    )
    assert render(by_id["recycling_count"]["value_template"], counters) == "5"
    assert render(by_id["total_count"]["value_template"], counters) == "8"


def test_edge_publishes_discovery_on_connect_and_uninstall_removes_it(
    broker: Broker, color_bundle: Path, tmp_path: Path, start_edge: StartEdge
) -> None:
    from whichbin.config import CaptureConfig, HomeAssistantConfig

    dev = f"cam-{uuid.uuid4().hex[:8]}"
    node = node_id(dev)
    frames = write_scene(tmp_path / "frames", ["compost"])
    start_edge(
        frames,
        start=False,
        device_id=dev,
        model=color_bundle,
        fps=50,
        capture=CaptureConfig(exit_at_end=True),
        homeassistant=HomeAssistantConfig(enabled=True),
    ).run()
    expected = {m.topic for m in discovery_messages(dev)}
    late = Recorder(broker.url, [f"homeassistant/+/{node}/#", f"whichbin/{dev}/counters"])
    try:
        assert wait_for(lambda: len(late.messages) >= len(expected) + 1, 5)
        configs = {t: json.loads(p) for t, p, retain in late.messages if t.startswith("home")}
        assert set(configs) == expected
        assert all(retain for _, _, retain in late.messages)
        (counters,) = late.payloads(f"whichbin/{dev}/counters")
        assert counters["compost"] == 1 and counters["total"] == 1  # what the sensors read
    finally:
        late.close()
    result = CliRunner().invoke(
        app, ["edge", "uninstall-ha", "--device-id", dev, "--mqtt", broker.url, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert set(expected) <= set(json.loads(result.stdout)["removed"])
    after = Recorder(broker.url, [f"homeassistant/+/{node}/#"])
    try:
        after.sync(f"homeassistant/sync/{node}/marker")  # after any retained config
        assert after.messages == []  # retained configs are gone
    finally:
        after.close()


def test_uninstall_ha_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["edge", "uninstall-ha", "--help"])
    assert result.exit_code == 0 and "whichbin edge uninstall-ha --device-id" in result.output
