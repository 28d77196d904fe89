"""The display against a real mosquitto: events, state, DeepLens, outages, joystick."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.helpers import Broker, Recorder
from tests.pi.support import connect, display_config, make_event, publish_event
from whichbin.contract import State, Topics, iso, utc_now
from whichbin.messaging.mqtt import MqttClient
from whichbin.messaging.outbox import SqliteOutbox
from whichbin.pi.displays import RecorderDisplay
from whichbin.pi.render import render
from whichbin.pi.runner import DisplayRunner, start_display


@pytest.fixture()
def device() -> str:
    return f"bin-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def publisher(broker: Broker) -> Iterator[MqttClient]:
    c = connect(broker.url)
    yield c
    c.stop()


@pytest.fixture()
def shown() -> RecorderDisplay:
    return RecorderDisplay()


@pytest.fixture()
def runner(broker: Broker, device: str, shown: RecorderDisplay) -> Iterator[DisplayRunner]:
    r = start_display(
        *display_config(broker.url, device, hold=0.6, deeplens_topic="deeplens/trash/infer"),
        shown,
        tick_interval=0.05,
        wait=10,
    )
    yield r
    r.stop()


def test_event_shows_icon_then_idle(
    runner: DisplayRunner, publisher: MqttClient, shown: RecorderDisplay, device: str
) -> None:
    assert shown.wait_for(render("idle"))
    assert shown.frames[0] == render("disconnected")  # never shown as up before connecting
    ev = make_event(device, "compost")
    assert publisher.publish_confirmed(Topics(device).event, ev.to_json())
    assert shown.wait_for(render("compost"))
    assert shown.wait_for(render("idle"))  # after the 0.6 s hold
    assert shown.frames[-3:] == [render("idle"), render("compost"), render("idle")]
    assert runner.app.last_event_id == ev.id


def test_other_devices_and_unsure(
    runner: DisplayRunner, publisher: MqttClient, shown: RecorderDisplay, device: str
) -> None:
    assert shown.wait_for(render("idle"))
    publisher.publish_confirmed(Topics("someone-else").event, make_event("x", "landfill").to_json())
    publisher.publish_confirmed(
        Topics(device).event, make_event(device, "landfill", "unsure").to_json()
    )
    assert wait_for(lambda: runner.app.icon_at(runner.clock()) == "unsure", 5)
    assert render("landfill") not in shown.frames


def test_retained_state_is_the_initial_picture(
    broker: Broker, publisher: MqttClient, shown: RecorderDisplay, device: str
) -> None:
    state = State(bin="recycling", since=iso(utc_now()))
    assert publisher.publish_confirmed(Topics(device).state, state.to_json(), retain=True)
    r = start_display(*display_config(broker.url, device, hold=5.0), shown, tick_interval=0.05)
    try:
        assert shown.wait_for(render("recycling"))
    finally:
        r.stop()
        publisher.publish_confirmed(Topics(device).state, b"", retain=True)  # clear retained


def test_deeplens_topic(
    runner: DisplayRunner, publisher: MqttClient, shown: RecorderDisplay
) -> None:
    assert shown.wait_for(render("idle"))
    assert publisher.publish_confirmed(
        "deeplens/trash/infer", json.dumps({"object": "Recycling"}), qos=0
    )
    assert shown.wait_for(render("recycling"))


def test_joystick_correction_is_published(
    broker: Broker,
    runner: DisplayRunner,
    publisher: MqttClient,
    shown: RecorderDisplay,
    device: str,
) -> None:
    topics = Topics(device)
    rec = Recorder(broker.url, [topics.correction])
    try:
        assert shown.wait_for(render("idle"))
        ev = make_event(device, "landfill")
        publisher.publish_confirmed(topics.event, ev.to_json())
        assert shown.wait_for(render("landfill"))
        shown.press("left")
        assert wait_for(lambda: rec.payloads(topics.correction), 5)
        (c,) = rec.payloads(topics.correction)
        assert isinstance(c, dict)
        assert (c["event_id"], c["bin"], c["source"], c["v"]) == (ev.id, "compost", "joystick", 1)
        assert c["ts"].endswith("Z")
        assert render("compost") in shown.frames
    finally:
        rec.close()


def test_broker_restart_shows_disconnected_then_recovers(
    fresh_broker: Broker, shown: RecorderDisplay, device: str
) -> None:
    r = start_display(
        *display_config(fresh_broker.url, device, hold=5.0), shown, tick_interval=0.05, wait=10
    )
    try:
        assert shown.wait_for(render("idle"))
        fresh_broker.stop()
        assert shown.wait_for(render("disconnected"), 10)
        fresh_broker.start()
        assert shown.wait_for(render("idle"), 20)  # reconnected (paho backs off 1, 2, 4 s)
        assert publish_event(fresh_broker.url, make_event(device, "landfill"))
        assert shown.wait_for(render("landfill"))  # resubscribed
    finally:
        r.stop()


def queued(path: Path) -> int:
    with SqliteOutbox(path) as box:
        return box.pending()


def test_corrections_made_while_the_broker_is_away_are_sent_when_it_is_back(
    fresh_broker: Broker, shown: RecorderDisplay, device: str, tmp_path: Path
) -> None:
    topics = Topics(device)
    outbox = tmp_path / "pi" / "outbox.sqlite"
    r = start_display(
        *display_config(fresh_broker.url, device, hold=30, data_dir=outbox.parent),
        shown,
        tick_interval=0.05,
        wait=10,
    )
    events = [make_event(device, "landfill"), make_event(device, "recycling")]
    try:
        assert publish_event(fresh_broker.url, events[0])
        assert shown.wait_for(render("landfill"))
        fresh_broker.stop()
        assert shown.wait_for(render("disconnected"), 10)
        shown.press("left")  # landfill → compost, made while the broker is down
        assert wait_for(lambda: queued(outbox) == 1, 5)
    finally:
        r.stop()  # the process ends with the correction still queued
    assert queued(outbox) == 1

    fresh_broker.start()
    rec = Recorder(fresh_broker.url, [topics.correction])
    shown2 = RecorderDisplay()
    r2 = start_display(
        *display_config(fresh_broker.url, device, hold=30, data_dir=outbox.parent),
        shown2,
        tick_interval=0.05,
        wait=20,
    )
    try:
        assert publish_event(fresh_broker.url, events[1])
        assert shown2.wait_for(render("recycling"))
        shown2.press("down")  # recycling → landfill, broker up
        assert wait_for(lambda: len(rec.payloads(topics.correction)) == 2, 10)
        sent = rec.payloads(topics.correction)
        assert [(c["event_id"], c["bin"]) for c in sent] == [  # type: ignore[index]
            (events[0].id, "compost"),
            (events[1].id, "landfill"),
        ]
        assert queued(outbox) == 0
    finally:
        rec.close()
        r2.stop()
