"""MqttClient against a real broker: ``start(wait)`` returns only once its subscriptions
are in place, so a message published right after is never missed."""

from __future__ import annotations

import threading
import uuid

from tests.helpers import Broker
from whichbin.messaging.mqtt import MqttClient


def test_start_waits_for_the_subscriptions_so_the_next_message_arrives(broker: Broker) -> None:
    topics = [f"t-{uuid.uuid4().hex[:8]}/{i}" for i in range(20)]
    pub = MqttClient(broker.url, f"pub-{uuid.uuid4().hex[:6]}")
    assert pub.start(wait=10)
    try:
        for topic in topics:  # 20 fresh subscribers: none may miss the first message
            got = threading.Event()
            sub = MqttClient(broker.url, f"sub-{uuid.uuid4().hex[:6]}")
            sub.subscribe(f"{topic}/#", lambda t, p, got=got: got.set())
            try:
                assert sub.start(wait=10) and sub.ready
                assert pub.publish_confirmed(f"{topic}/x", b"1")
                assert got.wait(5), f"{topic}: the message right after start() was missed"
            finally:
                sub.stop()
    finally:
        pub.stop()


def test_a_client_with_no_subscriptions_is_ready_once_connected(broker: Broker) -> None:
    c = MqttClient(broker.url, f"c-{uuid.uuid4().hex[:6]}")
    try:
        assert c.start(wait=10) and c.ready
    finally:
        c.stop()
    assert not c.ready
