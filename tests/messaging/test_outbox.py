"""The on-disk outbox: order, persistence, confirmation, and a real broker outage."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.helpers import Broker, Recorder
from whichbin.contract import Event, LabelP, ModelRef, RulesRef, iso, utc_now
from whichbin.messaging.mqtt import MqttClient
from whichbin.messaging.outbox import OutboxDrainer, SqliteOutbox

TOPIC = "whichbin/edge-1/event"


def event_json(n: int) -> str:
    return Event(
        ts=iso(utc_now()),
        device="edge-1",
        bin="compost",
        label=f"item-{n}",
        confidence=0.9,
        decision="decided",
        top_k=[LabelP(label=f"item-{n}", p=0.9)],
        model=ModelRef(version="test/1", sha256="0" * 64),
        rules=RulesRef(name="test", version="1"),
    ).to_json()


def ids_once(rec: Recorder, topic: str = TOPIC) -> list[str]:
    """Event ids in arrival order, duplicates dropped (what a consumer does)."""
    seen: list[str] = []
    for p in rec.payloads(topic):
        assert isinstance(p, dict)
        if p["id"] not in seen:
            seen.append(p["id"])
    return seen


class ListPublisher:
    """Confirms the first ``ok`` messages, then refuses; keeps what it confirmed."""

    def __init__(self, ok: int = 10**9, reject_topic: str | None = None) -> None:
        self.ok = ok
        self.reject_topic = reject_topic
        self.sent: list[tuple[str, bytes, int, bool]] = []

    def publish_confirmed(self, topic, payload, qos=1, retain=False, timeout=5) -> bool:  # noqa: ANN001
        if topic == self.reject_topic:
            raise ValueError("Invalid topic")
        if len(self.sent) >= self.ok:
            return False
        self.sent.append((topic, payload, qos, retain))
        return True


class Gate:
    """A publisher that refuses while closed (the broker is 'unreachable' for the outbox)."""

    def __init__(self, client: MqttClient) -> None:
        self.client = client
        self.open = threading.Event()
        self.open.set()

    def publish_confirmed(self, topic, payload, qos=1, retain=False, timeout=5) -> bool:  # noqa: ANN001
        if not self.open.is_set():
            return False
        return self.client.publish_confirmed(topic, payload, qos, retain, timeout)


def client_for(url: str) -> MqttClient:
    c = MqttClient(url, f"test-outbox-{uuid.uuid4().hex[:8]}")
    assert c.start(wait=10)
    return c


# -- without a broker ------------------------------------------------------------------
def test_put_is_on_disk_in_order_and_survives_a_new_instance(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with SqliteOutbox(path) as box:
        payloads = [event_json(i) for i in range(5)]
        ids = [box.put(TOPIC, p) for p in payloads]
        assert ids == sorted(ids)
        box.put("whichbin/edge-1/state", b'{"bin": "idle"}', qos=1, retain=True)
        assert box.publish(TOPIC, "x") is True  # the Publisher protocol
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    with SqliteOutbox(path) as again:
        items = again.peek()
        assert len(again) == 7
        assert [i.payload for i in items[:5]] == [p.encode() for p in payloads]  # byte for byte
        assert (items[5].topic, items[5].retain, items[5].qos) == ("whichbin/edge-1/state", True, 1)


def test_flush_deletes_only_confirmed_rows_and_keeps_order(tmp_path: Path) -> None:
    box = SqliteOutbox(tmp_path / "o.sqlite")
    for i in range(5):
        box.put(TOPIC, event_json(i))
    expected = [i.payload for i in box.peek()]
    half = ListPublisher(ok=2)
    assert box.flush(half) == 2
    assert len(box) == 3
    assert box.peek()[0].attempts == 1  # the refused one, still first in line
    rest = ListPublisher()
    assert box.flush(rest) == 3
    assert [s[1] for s in half.sent + rest.sent] == expected
    assert len(box) == 0
    assert box.flush(rest) == 0


def test_flush_limit_and_refusing_publisher(tmp_path: Path) -> None:
    box = SqliteOutbox(tmp_path / "o.sqlite")
    for i in range(3):
        box.put(TOPIC, event_json(i))
    assert box.flush(ListPublisher(ok=0)) == 0
    assert len(box) == 3
    assert box.flush(ListPublisher(), limit=1) == 1
    assert len(box) == 2


def test_a_rejected_message_does_not_block_the_queue(tmp_path: Path) -> None:
    box = SqliteOutbox(tmp_path / "o.sqlite")
    box.put(TOPIC, "a")
    box.put("bad/#/topic", "b")
    box.put(TOPIC, "c")
    pub = ListPublisher(reject_topic="bad/#/topic")
    assert box.flush(pub) == 2
    assert [s[1] for s in pub.sent] == [b"a", b"c"]
    ((item, error),) = box.dead()
    assert (item.topic, item.payload, error) == ("bad/#/topic", b"b", "Invalid topic")
    assert len(box) == 0


# -- against a real broker ---------------------------------------------------------------
@pytest.mark.parametrize("n", [20])
def test_broker_outage_loses_nothing(fresh_broker: Broker, tmp_path: Path, n: int) -> None:
    client = client_for(fresh_broker.url)
    box = SqliteOutbox(tmp_path / "edge.sqlite")
    try:
        fresh_broker.stop()
        assert wait_for(lambda: not client.connected, 10)
        payloads = [event_json(i) for i in range(n)]
        for p in payloads:
            box.put(TOPIC, p)
        assert box.flush(client) == 0  # unreachable: nothing is deleted
        assert len(box) == n
        fresh_broker.start()
        rec = Recorder(fresh_broker.url, [TOPIC])
        try:
            assert client.wait_connected(20)
            drainer = OutboxDrainer(box, client, retry_interval=0.2).start()
            want = [json.loads(p)["id"] for p in payloads]
            assert wait_for(lambda: ids_once(rec) == want, 20), ids_once(rec)
            drainer.stop()
            assert len(box) == 0
            assert drainer.sent == n
            # stored as-is: the consumer sees the original payloads
            first = {p["id"]: p for p in rec.payloads(TOPIC) if isinstance(p, dict)}
            assert [first[i] for i in want] == [json.loads(p) for p in payloads]
        finally:
            rec.close()
    finally:
        client.stop()
        box.close()


def test_drainer_keeps_sending_across_an_outage(fresh_broker: Broker, tmp_path: Path) -> None:
    client = client_for(fresh_broker.url)
    gate = Gate(client)
    box = SqliteOutbox(tmp_path / "edge.sqlite")
    drainer = OutboxDrainer(box, gate, retry_interval=0.1).start()
    rec = Recorder(fresh_broker.url, [TOPIC])
    try:
        before = [event_json(i) for i in range(3)]
        for p in before:
            box.put(TOPIC, p)
        assert wait_for(lambda: len(ids_once(rec)) == 3, 10)
        rec.close()
        gate.open.clear()
        fresh_broker.stop()
        during = [event_json(i) for i in range(3, 8)]
        for p in during:
            box.put(TOPIC, p)
        assert wait_for(lambda: not client.connected, 10)
        assert len(box) == 5
        fresh_broker.start()
        rec = Recorder(fresh_broker.url, [TOPIC])  # subscribed before the queue drains
        gate.open.set()
        want = [json.loads(p)["id"] for p in during]
        assert wait_for(lambda: ids_once(rec) == want, 20), ids_once(rec)
        assert wait_for(lambda: len(box) == 0, 5)
    finally:
        drainer.stop()
        rec.close()
        client.stop()
        box.close()


def test_rows_left_by_a_stopped_process_are_sent_next_time(broker: Broker, tmp_path: Path) -> None:
    path = tmp_path / "edge.sqlite"
    topic = f"whichbin/edge-{uuid.uuid4().hex[:6]}/event"
    payloads = [event_json(i) for i in range(4)]
    first = SqliteOutbox(path)
    for p in payloads:
        first.put(topic, p)
    first.close()  # "the process stopped" before anything was sent

    rec = Recorder(broker.url, [topic])
    client = client_for(broker.url)
    second = SqliteOutbox(path)
    try:
        assert second.wait_for_work(0)  # rows found on open
        assert second.flush(client) == 4
        want = [json.loads(p)["id"] for p in payloads]
        assert wait_for(lambda: ids_once(rec, topic) == want, 10)
        assert len(second) == 0
    finally:
        second.close()
        client.stop()
        rec.close()
