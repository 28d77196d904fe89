"""No event lost: the outbox across a broker outage and a process restart; the last will."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.edge.fakes import ScriptedSource
from tests.edge.scenes import write_scene
from tests.helpers import Broker, Recorder
from whichbin.config import CaptureConfig, EdgeConfig, MqttConfig
from whichbin.contract import Topics
from whichbin.edge.service import EdgeService


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


class Consumer:
    """What a home automation would run: a persistent session, QoS 1, dedup by event id."""

    def __init__(self, url: str, topic: str) -> None:
        import paho.mqtt.client as mqtt

        host, port = url.removeprefix("mqtt://").split(":")
        self.received: list[dict] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"consumer-{uuid.uuid4().hex[:6]}",
            clean_session=False,
        )
        self.client.reconnect_delay_set(1, 2)
        ready = threading.Event()

        def on_connect(c, u, f, rc, p=None):  # noqa: ANN001
            c.subscribe(topic, 1)
            ready.set()

        def on_message(c, u, m):  # noqa: ANN001
            with self.lock:
                self.received.append(json.loads(m.payload))

        self.client.on_connect, self.client.on_message = on_connect, on_message
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert ready.wait(10)
        time.sleep(0.2)

    def unique(self) -> list[dict]:
        """Each event once, in arrival order (a duplicate after a lost PUBACK is dropped)."""
        seen: set[str] = set()
        out = []
        with self.lock:
            for e in self.received:
                if e["id"] not in seen:
                    seen.add(e["id"])
                    out.append(e)
        return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.slow
def test_broker_restart_mid_run_loses_no_event(
    persistent_broker: Broker, color_bundle: Path, tmp_path: Path
) -> None:
    dev = f"cam-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(persistent_broker.url, Topics(dev).event)
    camera = ScriptedSource(fps=100)
    svc = EdgeService(
        EdgeConfig(
            source="scripted", device_id=dev, model=color_bundle, data_dir=tmp_path / "edge"
        ),
        MqttConfig(url=persistent_broker.url),
        source=camera,
    ).start()
    try:
        assert svc.client.wait_connected(5)
        assert wait_for(lambda: svc.runner.stats.frames > 10, 5)
        camera.show("landfill")
        assert wait_for(lambda: len(consumer.unique()) == 1, 10)

        persistent_broker.stop()
        assert wait_for(lambda: not svc.client.connected, 10)
        for b in ("compost", "recycling", "landfill"):
            camera.show(b)
        assert wait_for(lambda: svc.runner.stats.events == 4, 10)
        assert svc.outbox.pending() >= 1  # waiting on disk for the broker
        assert len(consumer.unique()) == 1

        persistent_broker.start()
        assert wait_for(lambda: len(consumer.unique()) == 4, 40), consumer.received
        time.sleep(0.5)  # late duplicates, if any, would arrive now
        events = consumer.unique()
        assert [e["id"] for e in events] == list(svc.runner.stats.event_ids)  # in order
        assert [e["bin"] for e in events] == ["landfill", "compost", "recycling", "landfill"]
        assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)  # original times
        assert svc.outbox.pending() == 0
    finally:
        consumer.close()
        svc.stop()


@pytest.mark.slow
def test_events_stored_while_offline_are_sent_by_the_next_process(
    fresh_broker: Broker, color_bundle: Path, tmp_path: Path
) -> None:
    dev = f"cam-{uuid.uuid4().hex[:8]}"
    topics = Topics(dev)
    data_dir = tmp_path / "edge"
    fresh_broker.stop()  # the broker is down the whole first run
    first = EdgeService(
        EdgeConfig(
            source=str(write_scene(tmp_path / "frames", ["compost", "recycling"])),
            device_id=dev,
            model=color_bundle,
            fps=100,
            connect_timeout=0.2,
            data_dir=data_dir,
            capture=CaptureConfig(exit_at_end=True),
        ),
        MqttConfig(url=fresh_broker.url),
    )
    stats = first.run()
    assert stats.events == 2
    ids = list(stats.event_ids)

    fresh_broker.start()
    rec = Recorder(fresh_broker.url, [topics.event])
    camera = ScriptedSource(fps=50)
    second = EdgeService(
        EdgeConfig(source="scripted", device_id=dev, model=color_bundle, data_dir=data_dir),
        MqttConfig(url=fresh_broker.url),
        source=camera,
    ).start()
    try:
        assert wait_for(lambda: len(rec.payloads(topics.event)) >= 2, 15)
        events = rec.payloads(topics.event)
        assert [e["id"] for e in events] == ids  # the first run's events, ids and order
        assert [e["bin"] for e in events] == ["compost", "recycling"]
        assert second.runner.stats.events == 0
    finally:
        rec.close()
        second.stop()


def test_a_crash_leaves_the_last_will_offline(
    broker: Broker, color_bundle: Path, tmp_path: Path
) -> None:
    dev = f"cam-{uuid.uuid4().hex[:8]}"
    topics = Topics(dev)
    frames = write_scene(tmp_path / "frames", ["compost"])
    rec = Recorder(broker.url, [topics.availability])
    cmd = [
        sys.executable, "-c", "from whichbin.cli.main import app; app()",
        "edge", "run", "--model", str(color_bundle), "--source", str(frames), "--fps", "20",
        "--mqtt", broker.url, "--device-id", dev, "--data-dir", str(tmp_path / "edge"),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ)
    try:
        assert wait_for(lambda: rec.payloads(topics.availability) == ["online"], 20)
        proc.send_signal(signal.SIGKILL)  # no goodbye: the broker sends the will
        proc.wait(10)
        assert wait_for(lambda: rec.payloads(topics.availability) == ["online", "offline"], 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rec.close()
