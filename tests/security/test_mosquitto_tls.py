"""MQTT locked down: a real mosquitto started from deploy/mosquitto/ (TLS, a certificate
and password per client, ACLs), rendered into a tmp dir."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import free_port, wait_for
from tests.edge.scenes import write_scene
from tests.helpers import SigningKey
from tests.registry.fixtures import register
from whichbin.cli.main import app
from whichbin.messaging.mqtt import MqttClient
from whichbin.security.certs import create_certificates

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
USERS = ("cam1", "cam2", "registry", "display-cam1")


@dataclass
class TlsBroker:
    port: int
    folder: Path
    proc: subprocess.Popen

    def url(self, user: str | None) -> str:
        return f"mqtts://{user + '@' if user else ''}127.0.0.1:{self.port}"

    def client(
        self, user: str | None, password: str | None = None, cert: str | None = None, **kw: str
    ) -> MqttClient:
        name = cert or user or "cam1"
        return MqttClient(
            self.url(user),
            f"{name}-{uuid.uuid4().hex[:6]}",
            password=password if password is not None else f"pw-{user}",
            ca_file=kw.get("ca_file", str(self.folder / "ca.crt")),
            cert_file=kw.get("cert_file", str(self.folder / f"{name}.crt")),
            key_file=kw.get("key_file", str(self.folder / f"{name}.key")),
        )


def render(folder: Path, port: int) -> Path:
    """deploy/mosquitto's files with this folder's paths, a local port and our users."""
    conf = (DEPLOY / "whichbin.conf").read_text()
    conf = conf.replace("/etc/mosquitto/whichbin", str(folder))
    conf = conf.replace("listener 8883", f"listener {port} 127.0.0.1")
    conf += (
        f"user {getpass.getuser()}\n"  # tmp files: stay this user (root would drop to mosquitto)
    )
    acl = (DEPLOY / "acl").read_text().replace("kitchen", "cam1")
    (folder / "acl").write_text(acl)
    (folder / "whichbin.conf").write_text(conf)
    passwd = folder / "passwd"
    for i, user in enumerate(USERS):
        flags = ["-c"] if i == 0 else []
        subprocess.run(
            ["mosquitto_passwd", *flags, "-b", str(passwd), user, f"pw-{user}"], check=True
        )
    return folder / "whichbin.conf"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    if not shutil.which("mosquitto_passwd"):
        pytest.fail("mosquitto_passwd is not installed (apt-get install -y mosquitto)")
    folder = tmp_path_factory.mktemp("tls")
    create_certificates(folder, ["127.0.0.1", "localhost"], list(USERS))
    create_certificates(folder / "rogue", [], ["cam1"])  # same name, another CA
    port = free_port()
    conf = render(folder, port)
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    log = open(folder / "mosquitto.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=log)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"mosquitto exited: {(folder / 'mosquitto.log').read_text()}")
            time.sleep(0.05)
    yield TlsBroker(port, folder, proc)
    proc.terminate()
    proc.wait(10)
    log.close()


class Seen:
    """What the registry account (reads whichbin/#) receives."""

    def __init__(self, broker: TlsBroker, topic: str = "whichbin/#") -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = broker.client("registry")
        self.client.subscribe(topic, self._on)
        assert self.client.start(wait=5), self.client.failure(5)
        time.sleep(0.2)  # the subscription is in place

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
    why = refused(tls_broker.client(None, cert="cam1"))
    assert "auth" in why and "anonymous" in why
    why = refused(tls_broker.client("cam1", password="wrong"))
    assert "auth" in why and "user cam1" in why
    assert "127.0.0.1" in why and "\n" not in why


def test_a_certificate_from_another_ca_is_refused(tls_broker: TlsBroker) -> None:
    rogue = tls_broker.folder / "rogue"
    why = refused(
        tls_broker.client(
            "cam1", cert_file=str(rogue / "cam1.crt"), key_file=str(rogue / "cam1.key")
        )
    )
    assert "TLS" in why
    # and a client that does not trust the broker's certificate says so
    why = refused(tls_broker.client("cam1", ca_file=str(rogue / "ca.crt")))
    assert "TLS" in why and "not trusted" in why


def test_unreachable_says_so() -> None:
    client = MqttClient(f"mqtts://cam1@127.0.0.1:{free_port()}", "x", password="p")
    why = refused(client, wait=1.5)
    assert why.startswith("cannot reach the MQTT broker at 127.0.0.1") and "refused" in why


def test_a_device_publishes_only_its_own_topics(tls_broker: TlsBroker) -> None:
    seen = Seen(tls_broker)
    cam1, display = tls_broker.client("cam1"), tls_broker.client("display-cam1")
    try:
        assert cam1.start(wait=5), cam1.failure(5)
        assert display.start(wait=5), display.failure(5)
        for topic in (
            "whichbin/cam2/event",  # another device
            "whichbin/fleet/deployment",  # only the registry deploys
            "whichbin/cam1/deployment",  # not even its own deployment
            "whichbin/cam1/set/pause",
        ):
            assert cam1.publish_confirmed(topic, b"{}", qos=1)
        assert display.publish_confirmed("whichbin/cam1/state", b"{}", qos=1)  # display reads
        assert cam1.publish_confirmed("whichbin/cam1/event", b"{}", qos=1)  # allowed
        assert display.publish_confirmed("whichbin/cam1/correction", b"{}", qos=1)  # joystick
        assert wait_for(lambda: "whichbin/cam1/correction" in seen.topics(), 5)
        time.sleep(0.3)
        assert sorted(seen.topics()) == ["whichbin/cam1/correction", "whichbin/cam1/event"]
    finally:
        cam1.stop()
        display.stop()
        seen.close()


def test_a_device_reads_only_its_own_topics_and_the_fleet_deployment(
    tls_broker: TlsBroker,
) -> None:
    got: list[str] = []
    cam1 = tls_broker.client("cam1")
    cam1.subscribe("whichbin/#", lambda t, p: got.append(t))
    registry = tls_broker.client("registry")
    try:
        assert cam1.start(wait=5) and registry.start(wait=5)
        time.sleep(0.2)
        for topic in (
            "whichbin/cam2/set/pause",
            "whichbin/cam2/deployment",
            "whichbin/fleet/deployment",
            "whichbin/cam1/set/pause",
        ):
            assert registry.publish_confirmed(topic, b"{}", qos=1)
        assert wait_for(lambda: len(got) >= 2, 5)
        time.sleep(0.3)
        assert sorted(got) == ["whichbin/cam1/set/pause", "whichbin/fleet/deployment"]
    finally:
        registry.publish_confirmed("whichbin/fleet/deployment", b"", retain=True)
        cam1.stop()
        registry.stop()


def test_an_edge_follows_a_signed_approval_through_tls(
    tls_broker: TlsBroker, tmp_path: Path, color_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from whichbin.config import EdgeConfig, MqttConfig
    from whichbin.edge.service import EdgeService
    from whichbin.registry.local import SqliteRegistry

    key = SigningKey.session()
    folder = tls_broker.folder
    registry = SqliteRegistry(tmp_path / "registry")
    v = register(registry, color_bundle)
    (tmp_path / "cam1.pw").write_text("pw-cam1\n")
    seen = Seen(tls_broker)
    edge = EdgeService(
        EdgeConfig(
            source=str(write_scene(tmp_path / "frames", ["compost"])),
            device_id="cam1",
            fps=50,
            models_dir=tmp_path / "models",
            data_dir=None,
            security=key.edge_security(file_root=tmp_path / "registry"),
        ),
        MqttConfig(
            url=tls_broker.url("cam1"),
            password_file=str(tmp_path / "cam1.pw"),
            ca_file=str(folder / "ca.crt"),
            cert_file=str(folder / "cam1.crt"),
            key_file=str(folder / "cam1.key"),
        ),
    ).start()
    try:
        assert wait_for(lambda: "whichbin/cam1/availability" in seen.topics(), 10)
        for k, f in (
            ("CA_FILE", "ca.crt"),
            ("CERT_FILE", "registry.crt"),
            ("KEY_FILE", "registry.key"),
        ):
            monkeypatch.setenv(f"WHICHBIN_MQTT__{k}", str(folder / f))
        monkeypatch.setenv("WHICHBIN_MQTT_PASSWORD", "pw-registry")
        res = CliRunner().invoke(
            app,
            [
                "registry",
                "approve",
                v.id,
                "--registry",
                str(registry.root),
                "--mqtt",
                tls_broker.url("registry"),
                "--by",
                "ana",
            ],
        )
        assert res.exit_code == 0, res.output
        status = "whichbin/cam1/deployment/status"
        assert wait_for(
            lambda: any(b'"active"' in p for t, p in seen.messages if t == status), 20
        ), [p for t, p in seen.messages if t == status]
        assert wait_for(lambda: "whichbin/cam1/event" in seen.topics(), 20)
    finally:
        edge.stop()
        clear = tls_broker.client("registry")
        if clear.start(wait=5):
            clear.publish_confirmed("whichbin/fleet/deployment", b"", retain=True)
        clear.stop()
        seen.close()
