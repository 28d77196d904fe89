"""No event lost: the outbox across a broker outage and a process restart; the last will."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.edge.conftest import EdgeProcess, StartEdge, edge_process_on_compost, new_device
from tests.edge.fakes import ScriptedSource
from tests.edge.scenes import write_scene
from tests.helpers import Broker, Recorder
from whichbin.config import CaptureConfig, MqttConfig
from whichbin.contract import Topics


@pytest.fixture()
def persistent_broker(fresh_broker: Broker) -> Iterator[Broker]:
    """``fresh_broker``'s port and folder, restarted with persistence on."""
    fresh_broker.stop()
    b = Broker(
        fresh_broker.exe, fresh_broker.port, fresh_broker.workdir / "persistent", persistent=True
    )
    b.start()
    yield b
    b.stop()


def consumer(url: str, topic: str) -> Recorder:
    """What a home automation would run: a persistent session, QoS 1, dedup by event id."""
    return Recorder(url, [topic], client_id=f"consumer-{uuid.uuid4().hex[:6]}")


def unique(rec: Recorder, topic: str) -> list[dict]:
    """Each event once, in arrival order (a duplicate after a lost PUBACK is dropped)."""
    seen: set[str] = set()
    out = []
    for e in rec.payloads(topic):
        assert isinstance(e, dict)
        if e["id"] not in seen:
            seen.add(e["id"])
            out.append(e)
    return out


@pytest.mark.slow
def test_broker_restart_mid_run_loses_no_event(
    persistent_broker: Broker, color_bundle: Path, tmp_path: Path, start_edge: StartEdge
) -> None:
    dev = f"cam-{uuid.uuid4().hex[:8]}"
    topic = Topics(dev).event
    rec = consumer(persistent_broker.url, topic)
    camera = ScriptedSource(fps=100)
    svc = start_edge(
        camera,
        device_id=dev,
        mqtt=MqttConfig(url=persistent_broker.url),
        model=color_bundle,
        data_dir=tmp_path / "edge",
    )
    try:
        assert svc.client.wait_connected(5)
        assert wait_for(lambda: svc.runner.stats.frames > 10, 5)
        camera.show("landfill")
        assert wait_for(lambda: len(unique(rec, topic)) == 1, 10)

        persistent_broker.stop()
        assert wait_for(lambda: not svc.client.connected, 10)
        for b in ("compost", "recycling", "landfill"):
            camera.show(b)
        assert wait_for(lambda: svc.runner.stats.events == 4, 10)
        assert svc.outbox.pending() >= 1  # waiting on disk for the broker
        assert len(unique(rec, topic)) == 1

        persistent_broker.start()
        assert wait_for(lambda: len(unique(rec, topic)) == 4, 40), rec.payloads(topic)
        assert wait_for(lambda: svc.outbox.pending() == 0, 10)  # every event acknowledged
        rec.sync(topic, via=svc.client)  # and whatever the edge sent before has arrived
        events = unique(rec, topic)
        assert [e["id"] for e in events] == list(svc.runner.stats.event_ids)  # in order
        assert [e["bin"] for e in events] == ["landfill", "compost", "recycling", "landfill"]
        assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)  # original times
        assert svc.outbox.pending() == 0
    finally:
        rec.close()


@pytest.mark.slow
def test_events_stored_while_offline_are_sent_by_the_next_process(
    fresh_broker: Broker, color_bundle: Path, tmp_path: Path, start_edge: StartEdge
) -> None:
    dev, topics = new_device()
    options = {
        "device_id": dev,
        "mqtt": MqttConfig(url=fresh_broker.url),
        "model": color_bundle,
        "data_dir": tmp_path / "edge",
    }
    fresh_broker.stop()  # the broker is down the whole first run
    frames = write_scene(tmp_path / "frames", ["compost", "recycling"])
    first = start_edge(
        frames,
        start=False,
        fps=100,
        capture=CaptureConfig(exit_at_end=True),
        connect_timeout=0.2,
        **options,
    )
    stats = first.run()
    assert stats.events == 2
    ids = list(stats.event_ids)

    fresh_broker.start()
    rec = Recorder(fresh_broker.url, [topics.event])
    second = start_edge(ScriptedSource(fps=50), **options)
    try:
        assert wait_for(lambda: len(rec.payloads(topics.event)) >= 2, 15)
        events = rec.payloads(topics.event)
        assert [e["id"] for e in events] == ids  # the first run's events, ids and order
        assert [e["bin"] for e in events] == ["compost", "recycling"]
        assert second.runner.stats.events == 0
    finally:
        rec.close()


def test_a_crash_leaves_the_last_will_offline(
    broker: Broker, color_bundle: Path, tmp_path: Path, edge_process: EdgeProcess
) -> None:
    topics, rec, proc = edge_process_on_compost(
        edge_process, broker.url, color_bundle, tmp_path, 20
    )
    try:
        assert wait_for(lambda: rec.payloads(topics.availability) == ["online"], 20)
        proc.send_signal(signal.SIGKILL)  # no goodbye: the broker sends the will
        proc.wait(10)
        assert wait_for(lambda: rec.payloads(topics.availability) == ["online", "offline"], 10)
    finally:
        rec.close()
