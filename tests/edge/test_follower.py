"""Deployments: a running edge without --model follows retained deployment messages."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for
from tests.edge.conftest import StartEdge
from tests.edge.fakes import InMemoryPublisher
from tests.edge.scenes import write_scene
from tests.helpers import Broker, Recorder, SigningKey, make_color_bundle
from whichbin.config import CaptureConfig, MqttConfig
from whichbin.contract import Deployment, DeploymentStatus, Topics, iso, utc_now
from whichbin.edge.follower import DeploymentFollower
from whichbin.edge.model_store import CURRENT_FILE
from whichbin.inference import sha256_file
from whichbin.messaging.mqtt import MqttClient


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture()
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A local http.server over a folder: (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


KEY = SigningKey.session()  # the approver key the session's approvals sign with


def deployment(path: Path, version: str, url: str | None = None, sha: str | None = None) -> str:
    """A deployment signed by the session's approver key."""
    return KEY.sign(
        Deployment(
            version=version,
            sha256=sha or sha256_file(path),
            url=url or path.resolve().as_uri(),
            ts=iso(utc_now()),
            approved_by="tester",
            size=path.stat().st_size,
        )
    ).to_json()


def statuses(rec: Recorder, topic: str) -> list[tuple[str, str]]:
    return [(s["version"], s["state"]) for s in rec.payloads(topic)]


def test_a_running_edge_follows_deployments(
    broker: Broker, tmp_path: Path, http_dir: tuple[Path, str], start_edge: StartEdge
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"  # the session broker is shared: own fleet topic
    dev = "cam1"
    topics = Topics(dev, prefix)
    v2 = make_color_bundle(tmp_path / "v2.onnx", version="test/2")
    v3 = make_color_bundle(tmp_path / "v3.onnx", version="test/3")
    v4 = make_color_bundle(tmp_path / "v4.onnx", version="test/4")
    www, base = http_dir
    (www / "v4.onnx").write_bytes(v4.read_bytes())
    frames = write_scene(tmp_path / "frames", ["landfill", "compost", "recycling"])
    models_dir = tmp_path / "models"

    rec = Recorder(broker.url, [f"{prefix}/{dev}/#"])
    pub = MqttClient(broker.url, f"pub-{prefix}")
    assert pub.start(wait=5)
    svc = start_edge(
        frames,
        device_id=dev,
        fps=50,
        mqtt=MqttConfig(url=broker.url, prefix=prefix),
        models_dir=models_dir,
        security=KEY.edge_security(tmp_path, http_hosts=["127.0.0.1"]),
    )

    def events_by(sha: str, after: int = 0) -> list[dict]:
        return [e for e in rec.payloads(topics.event)[after:] if e["model"]["sha256"] == sha]

    try:
        # No model yet: the edge is online, idle, plays frames and waits.
        assert wait_for(lambda: rec.payloads(topics.availability) == ["online"], 5)
        assert wait_for(lambda: svc.runner.stats.frames > 60, 10)
        rec.sync(topics.event, via=svc.client)  # what the edge sent so far has arrived
        assert rec.payloads(topics.event) == []
        assert [s["bin"] for s in rec.payloads(topics.state)] == ["idle"]

        # A fleet deployment (file:// URL) → downloading, verifying, active; events use it.
        sha2 = sha256_file(v2)
        assert pub.publish_confirmed(topics.fleet_deployment, deployment(v2, "test/2"), retain=True)
        want = [("test/2", "downloading"), ("test/2", "verifying"), ("test/2", "active")]
        assert wait_for(lambda: statuses(rec, topics.deployment_status) == want, 10)
        for s in rec.payloads(topics.deployment_status):
            DeploymentStatus.model_validate(s)
        assert wait_for(lambda: len(events_by(sha2)) >= 3, 10)
        assert {e["model"]["version"] for e in events_by(sha2)} == {"test/2"}
        assert json.loads((models_dir / CURRENT_FILE).read_text())["sha256"] == sha2

        # A wrong sha256 → failed, with the error; the old model keeps working.
        bad = deployment(v3, "test/3", sha="0" * 64)
        assert pub.publish_confirmed(topics.fleet_deployment, bad, retain=True)
        assert wait_for(lambda: statuses(rec, topics.deployment_status)[-1] == ("test/3", "failed"))
        failed = rec.payloads(topics.deployment_status)[-1]
        assert "sha256" in failed["error"]
        seen = len(rec.payloads(topics.event))
        assert wait_for(lambda: len(rec.payloads(topics.event)) >= seen + 3, 10)
        assert all(e["model"]["sha256"] == sha2 for e in rec.payloads(topics.event)[seen:])

        # A device-specific deployment (http://) overrides the fleet's.
        sha4 = sha256_file(v4)
        dep4 = deployment(v4, "test/4", url=f"{base}/v4.onnx")
        assert pub.publish_confirmed(topics.deployment, dep4, retain=True)
        assert wait_for(lambda: statuses(rec, topics.deployment_status)[-1] == ("test/4", "active"))
        seen = len(rec.payloads(topics.event))
        assert wait_for(lambda: len(events_by(sha4, seen)) >= 2, 10)

        # While it stands, a new fleet deployment is not applied ...
        v5 = make_color_bundle(tmp_path / "v5.onnx", version="test/5")
        assert pub.publish_confirmed(topics.fleet_deployment, deployment(v5, "test/5"), retain=True)
        n = len(rec.payloads(topics.deployment_status))
        seen = len(rec.payloads(topics.event))
        assert wait_for(lambda: len(rec.payloads(topics.event)) >= seen + 3, 10)
        assert len(rec.payloads(topics.deployment_status)) == n
        assert all(e["model"]["version"] == "test/4" for e in rec.payloads(topics.event)[seen:])

        # ... until the device's own deployment is cleared: then the fleet's applies.
        assert pub.publish_confirmed(topics.deployment, b"", retain=True)
        assert wait_for(lambda: statuses(rec, topics.deployment_status)[-1] == ("test/5", "active"))
    finally:
        svc.stop()
        for topic in (topics.fleet_deployment, topics.deployment):
            pub.publish_confirmed(topic, b"", retain=True)
        pub.stop()
        rec.close()
    late = Recorder(broker.url, [topics.availability, topics.deployment_status])
    try:
        assert wait_for(lambda: len(late.messages) >= 2, 5)
        assert late.payloads(topics.availability) == ["offline"]
        assert late.payloads(topics.deployment_status) == [
            {"v": 1, "version": "test/5", "state": "active", "error": None}
        ]
    finally:
        late.close()


def test_verification_failure_keeps_the_old_model(tmp_path: Path) -> None:
    good = make_color_bundle(tmp_path / "good.onnx", version="test/1")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx model at all")
    pub = InMemoryPublisher()
    follower = DeploymentFollower("cam1", tmp_path / "models", pub, guard=KEY.guard(tmp_path))
    assert follower.apply(Deployment.model_validate_json(deployment(good, "test/1")))
    assert not follower.apply(Deployment.model_validate_json(deployment(junk, "test/junk")))
    states = [(s["version"], s["state"]) for s in pub.on(Topics("cam1").deployment_status)]
    assert states[-3:] == [
        ("test/junk", "downloading"),
        ("test/junk", "verifying"),
        ("test/junk", "failed"),
    ]
    assert "not a readable ONNX" in pub.on(Topics("cam1").deployment_status)[-1]["error"]
    current = follower.current()
    assert current is not None and current.version == "test/1"
    assert not list((tmp_path / "models").glob(f"{sha256_file(junk)}*"))  # no bad file kept


def test_a_restart_without_broker_still_has_its_model(
    tmp_path: Path, start_edge: StartEdge
) -> None:
    bundle = make_color_bundle(tmp_path / "m.onnx", version="test/7")
    models_dir = tmp_path / "models"
    first = DeploymentFollower("cam1", models_dir, InMemoryPublisher(), guard=KEY.guard(tmp_path))
    assert first.apply(Deployment.model_validate_json(deployment(bundle, "test/7")))
    bundle.unlink()  # the source is gone: only models_dir remains

    frames = write_scene(tmp_path / "frames", ["recycling"])
    stats = start_edge(
        frames,
        start=False,
        device_id="cam1",
        fps=200,
        models_dir=models_dir,
        connect_timeout=0.2,
        capture=CaptureConfig(exit_at_end=True),
        mqtt=MqttConfig(url=f"mqtt://127.0.0.1:{free_port()}"),  # nobody listens
    ).run()
    assert list(stats.bins) == ["recycling"] and stats.errors == 0


def test_restore_ignores_a_tampered_model(tmp_path: Path) -> None:
    bundle = make_color_bundle(tmp_path / "m.onnx")
    models_dir = tmp_path / "models"
    assert DeploymentFollower(
        "c", models_dir, InMemoryPublisher(), guard=KEY.guard(tmp_path)
    ).apply(Deployment.model_validate_json(deployment(bundle, "test/1")))
    (models_dir / f"{sha256_file(bundle)}.onnx").write_bytes(b"tampered")
    assert DeploymentFollower("c", models_dir, InMemoryPublisher()).restore() is None


def test_default_model_fallback_is_explicit(tmp_path: Path) -> None:
    follower = DeploymentFollower("c", tmp_path, InMemoryPublisher())
    assert follower.restore() is None  # without the flag: wait for a deployment
    with_flag = DeploymentFollower("c", tmp_path, InMemoryPublisher(), fallback_default=True)
    model = with_flag.restore()  # the bundled model, if this build ships one
    from whichbin.inference import default_model_path

    assert (model is not None) == default_model_path().is_file()
