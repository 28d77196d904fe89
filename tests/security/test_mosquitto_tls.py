"""MQTT locked down: a real mosquitto started from deploy/mosquitto/ (TLS, a certificate
and password per client, ACLs), rendered into a tmp dir (the ``tls_broker`` fixture)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import free_port, wait_for
from tests.edge.scenes import write_scene
from tests.helpers import SigningKey, TlsBroker
from tests.registry.fixtures import register
from whichbin.cli.main import app
from whichbin.contract import DEEPLENS_TOPIC
from whichbin.messaging.mqtt import MqttClient

# The ACL tests run against the ACL as shipped and with its opt-in DeepLens grant enabled
# (what the end-to-end test runs with): the opt-in must open nothing else.
BOTH_ACLS = pytest.mark.parametrize(
    "tls_broker", [(), ("deeplens",)], indirect=True, ids=["shipped", "deeplens-opt-in"]
)


class Seen:
    """What the registry account (reads whichbin/#) receives."""

    def __init__(self, broker: TlsBroker, topic: str = "whichbin/#") -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = broker.client("registry")
        self.client.subscribe(topic, self._on)
        # start(wait) returns True only once the broker acknowledged the subscription
        assert self.client.start(wait=5), self.client.failure(5)

    def _on(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.messages.append((topic, payload))

    def topics(self) -> list[str]:
        with self.lock:
            return [t for t, _ in self.messages]

    def close(self) -> None:
        self.client.stop()


def refused(client: MqttClient, wait: float = 3) -> str:
    try:
        client.start()
        wait_for(lambda: client.connected or client.last_error is not None, wait)
        assert not client.connected, "the broker accepted the connection"
        return client.failure(wait)
    finally:
        client.stop()


def test_anonymous_and_wrong_password_are_refused(tls_broker: TlsBroker) -> None:
    why = refused(tls_broker.client(None, cert="kitchen"))
    assert "auth" in why and "anonymous" in why
    why = refused(tls_broker.client("kitchen", password="wrong"))
    assert "auth" in why and "user kitchen" in why
    assert "127.0.0.1" in why and "\n" not in why


def test_a_certificate_from_another_ca_is_refused(tls_broker: TlsBroker) -> None:
    rogue = tls_broker.workdir / "rogue"
    why = refused(
        tls_broker.client(
            "kitchen", cert_file=str(rogue / "kitchen.crt"), key_file=str(rogue / "kitchen.key")
        )
    )
    assert "TLS" in why
    # and a client that does not trust the broker's certificate says so
    why = refused(tls_broker.client("kitchen", ca_file=str(rogue / "ca.crt")))
    assert "TLS" in why and "not trusted" in why


def test_unreachable_says_so() -> None:
    client = MqttClient(f"mqtts://kitchen@127.0.0.1:{free_port()}", "x", password="p")
    why = refused(client, wait=1.5)
    assert why.startswith("cannot reach the MQTT broker at 127.0.0.1") and "refused" in why


@BOTH_ACLS
def test_a_device_publishes_only_its_own_topics(tls_broker: TlsBroker) -> None:
    seen = Seen(tls_broker)
    kitchen, display = tls_broker.client("kitchen"), tls_broker.client("display-kitchen")
    try:
        assert kitchen.start(wait=5), kitchen.failure(5)
        assert display.start(wait=5), display.failure(5)
        for topic in (
            "whichbin/cam2/event",  # another device
            "whichbin/fleet/deployment",  # only the registry deploys
            "whichbin/kitchen/deployment",  # not even its own deployment
            "whichbin/kitchen/set/pause",
        ):
            assert kitchen.publish_confirmed(topic, b"{}", qos=1)
        assert display.publish_confirmed("whichbin/kitchen/state", b"{}", qos=1)  # display reads
        assert kitchen.publish_confirmed("whichbin/kitchen/event", b"{}", qos=1)  # allowed
        assert display.publish_confirmed("whichbin/kitchen/correction", b"{}", qos=1)  # joystick
        # The broker forwards each client's messages in order: once both allowed ones are
        # in, any denied one it had let through would be in too.
        allowed = {"whichbin/kitchen/correction", "whichbin/kitchen/event"}
        assert wait_for(lambda: allowed <= set(seen.topics()), 5)
        assert sorted(seen.topics()) == ["whichbin/kitchen/correction", "whichbin/kitchen/event"]
    finally:
        kitchen.stop()
        display.stop()
        seen.close()


@BOTH_ACLS
def test_a_device_reads_only_its_own_topics_and_the_fleet_deployment(
    tls_broker: TlsBroker,
) -> None:
    got: list[str] = []
    kitchen = tls_broker.client("kitchen")
    kitchen.subscribe("whichbin/#", lambda t, p: got.append(t))
    registry = tls_broker.client("registry")
    try:
        assert kitchen.start(wait=5) and registry.start(wait=5)  # subscribed (acknowledged)
        for topic in (
            "whichbin/cam2/set/pause",
            "whichbin/cam2/deployment",
            "whichbin/fleet/deployment",
            "whichbin/kitchen/set/pause",
        ):
            assert registry.publish_confirmed(topic, b"{}", qos=1)
        # the last one is readable: in order, every earlier one forwarded has arrived too
        assert wait_for(lambda: "whichbin/kitchen/set/pause" in got, 5)
        assert sorted(got) == ["whichbin/fleet/deployment", "whichbin/kitchen/set/pause"]
    finally:
        registry.publish_confirmed("whichbin/fleet/deployment", b"", retain=True)
        kitchen.stop()
        registry.stop()


def test_an_edge_follows_a_signed_approval_through_tls(
    tls_broker: TlsBroker, tmp_path: Path, color_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from whichbin.config import EdgeConfig
    from whichbin.edge.service import EdgeService
    from whichbin.registry.local import SqliteRegistry

    key = SigningKey.session()
    folder = tls_broker.workdir
    registry = SqliteRegistry(tmp_path / "registry")
    v = register(registry, color_bundle)
    seen = Seen(tls_broker)
    edge = EdgeService(
        EdgeConfig(
            source=str(write_scene(tmp_path / "frames", ["compost"])),
            device_id="kitchen",
            fps=50,
            models_dir=tmp_path / "models",
            data_dir=None,
            security=key.edge_security(file_root=tmp_path / "registry"),
        ),
        tls_broker.mqtt("kitchen"),  # its certificate, key and password file
    ).start()
    try:
        assert wait_for(lambda: "whichbin/kitchen/availability" in seen.topics(), 10)
        monkeypatch.setenv("WHICHBIN_MQTT_PASSWORD", "pw-registry")
        res = CliRunner().invoke(  # the registry's TLS client files as flags
            app,
            [
                "registry", "approve", v.id, "--registry", str(registry.root),
                "--mqtt", tls_broker.url_for("registry"), "--by", "ana",
                "--ca-file", str(folder / "ca.crt"),
                "--cert-file", str(folder / "registry.crt"),
                "--key-file", str(folder / "registry.key"),
            ],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        status = "whichbin/kitchen/deployment/status"
        assert wait_for(
            lambda: any(b'"active"' in p for t, p in seen.messages if t == status), 20
        ), [p for t, p in seen.messages if t == status]
        assert wait_for(lambda: "whichbin/kitchen/event" in seen.topics(), 20)
    finally:
        edge.stop()
        clear = tls_broker.client("registry")
        if clear.start(wait=5):
            clear.publish_confirmed("whichbin/fleet/deployment", b"", retain=True)
        clear.stop()
        seen.close()


def test_approving_with_a_device_account_says_the_deployment_did_not_go_out(
    tls_broker: TlsBroker, tmp_path: Path, color_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mosquitto acknowledges (MQTT 3.1.1) a publish its ACL denies, then drops it: the
    deployer reads the retained message back, so a camera's account cannot claim success."""
    from whichbin.registry.local import SqliteRegistry

    registry = SqliteRegistry(tmp_path / "registry")
    v = register(registry, color_bundle)
    folder = tls_broker.workdir
    monkeypatch.setenv("WHICHBIN_MQTT_PASSWORD", "pw-kitchen")
    res = CliRunner().invoke(
        app,
        [
            "registry", "approve", v.id, "--registry", str(registry.root),
            "--mqtt", tls_broker.url_for("kitchen"), "--by", "ana", "--timeout", "5",
            "--ca-file", str(folder / "ca.crt"),
            "--cert-file", str(folder / "kitchen.crt"),
            "--key-file", str(folder / "kitchen.key"),
        ],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    line = res.output.strip()
    assert "did not keep the deployment" in line and "deploy/mosquitto/acl" in line, line
    assert "NOT published" in line and "Traceback" not in line


@BOTH_ACLS
def test_the_deeplens_topic_is_opt_in(tls_broker: TlsBroker) -> None:
    """Shipped: nobody reads deeplens/trash/infer. Opted in: the camera writes it and its
    display (the recipe's Pi script's account) reads it; no other account writes it."""
    opted_in = "deeplens" in tls_broker.opt_in
    events = "whichbin/kitchen/event"  # both recorders read it: what came before has arrived
    display = tls_broker.recorder("display-kitchen", [DEEPLENS_TOPIC, events])
    registry = tls_broker.recorder("registry", ["#"])
    senders = {u: tls_broker.client(u) for u in ("cam2", "registry", "display-kitchen")}
    kitchen = tls_broker.client("kitchen")
    try:
        for c in (*senders.values(), kitchen):
            assert c.start(wait=5), c.failure(5)
        for user, c in senders.items():
            assert c.publish_confirmed(DEEPLENS_TOPIC, user.encode(), qos=1)
        assert kitchen.publish_confirmed(DEEPLENS_TOPIC, b"kitchen", qos=1)
        display.sync(events, via=kitchen)
        registry.sync(events, via=kitchen)
        assert display.payloads(DEEPLENS_TOPIC) == (["kitchen"] if opted_in else [])
        assert registry.payloads(DEEPLENS_TOPIC) == []  # the registry never reads it
    finally:
        for c in (*senders.values(), kitchen):
            c.stop()
        display.close()
        registry.close()
