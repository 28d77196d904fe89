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


def test_a_subscription_after_connect_is_ready_only_once_acknowledged(broker: Broker) -> None:
    topic = f"late-{uuid.uuid4().hex[:8]}"
    got = threading.Event()
    pub = MqttClient(broker.url, f"pub-{uuid.uuid4().hex[:6]}")
    sub = MqttClient(broker.url, f"sub-{uuid.uuid4().hex[:6]}")
    try:
        assert pub.start(wait=10) and sub.start(wait=10) and sub.ready
        sub.client.loop_stop()  # hold the SUBACK back: nothing reads the socket now
        sub.subscribe(topic, lambda t, p: got.set())
        assert sub.connected and not sub.ready, "ready before the broker acknowledged"
        sub.client.loop_start()
        assert sub.wait_ready(10)
        assert pub.publish_confirmed(topic, b"1")
        assert got.wait(5), "the message right after ready was missed"
    finally:
        sub.stop()
        pub.stop()


def test_start_says_not_ready_when_the_subscriptions_are_not_acknowledged(
    broker: Broker,
) -> None:
    c = MqttClient(broker.url, f"c-{uuid.uuid4().hex[:6]}")
    c.subscribe(f"t-{uuid.uuid4().hex[:8]}", lambda t, p: None)
    c.client.on_subscribe = None  # the SUBACK is lost to this client
    try:
        assert not c.start(wait=1)
        assert c.connected and not c.ready
    finally:
        c.stop()


def test_read_retained_returns_what_the_broker_keeps(broker: Broker) -> None:
    topic = f"kept-{uuid.uuid4().hex[:8]}"
    c = MqttClient(broker.url, f"c-{uuid.uuid4().hex[:6]}")
    try:
        assert c.start(wait=10)
        assert c.read_retained(topic, 5) is None
        assert c.publish_confirmed(topic, b"v1", retain=True)
        assert c.read_retained(topic, 5) == b"v1"
        assert c.publish_confirmed(topic, b"", retain=True)  # cleared
        assert c.read_retained(topic, 5) is None and c.ready
    finally:
        c.stop()
