"""The REST API refuses what would make the deployment state inconsistent, with a 4xx."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.deploy.test_deploy_state import SlowDeployer, deployer, retained
from tests.helpers import Broker
from tests.registry.fixtures import register
from whichbin.deploy import MqttDeployer
from whichbin.registry.local import SqliteRegistry
from whichbin.web import create_app

HUGE = "99999999999999999999999"


@pytest.fixture()
def mqtt(broker: Broker, prefix: str) -> MqttDeployer:
    return deployer(broker, prefix)


@pytest.mark.parametrize("device", ["fleet", "", "#", "+", "cam/1", "cam\u0000"])
def test_deploy_to_a_bad_device_is_400_and_publishes_nothing(
    registry: SqliteRegistry,
    color_bundle: Path,
    mqtt: MqttDeployer,
    broker: Broker,
    prefix: str,
    device: str,
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    client = TestClient(create_app(registry=registry, deployer=mqtt))
    for v in (v1, v2):
        assert client.post(f"/api/models/{v.id}/approve", json={"by": "ana"}).status_code == 200
    r = client.post(f"/api/models/{v1.id}/deploy", json={"device": device})
    assert r.status_code == 400 and r.json()["detail"].startswith("device ")
    assert [m["version"] for m in retained(broker, f"{prefix}/fleet/deployment")] == [v2.id]  # type: ignore[index]
    assert registry.latest_approved("trash-classifier").id == v2.id  # type: ignore[union-attr]
    # Without a broker the device id is still checked first.
    r = TestClient(create_app(registry=registry)).post(
        f"/api/models/{v1.id}/deploy", json={"device": device}
    )
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", f"/api/models/x/{HUGE}"),
        ("get", f"/api/models/trash-classifier/{HUGE}"),
        ("post", f"/api/models/trash-classifier/{HUGE}/approve"),
        ("post", f"/api/models/trash-classifier/{HUGE}/reject"),
        ("post", f"/api/models/trash-classifier/{HUGE}/deploy"),
        ("get", f"/artifacts/trash-classifier/{HUGE}/model.onnx"),
        ("get", f"/reports/trash-classifier/{HUGE}/"),
    ],
)
def test_a_version_number_too_large_is_a_client_error(
    registry: SqliteRegistry, color_bundle: Path, method: str, path: str
) -> None:
    register(registry, color_bundle)
    client = TestClient(create_app(registry=registry), raise_server_exceptions=False)
    bodies = {"approve": {"by": "ana"}, "reject": {"reason": "x"}, "deploy": {}}
    body = bodies[path.rsplit("/", 1)[1]] if method == "post" else None
    r = client.request(method.upper(), path, json=body)
    assert r.status_code in (400, 404), r.text


def test_a_huge_note_is_400_and_stores_nothing(
    registry: SqliteRegistry, color_bundle: Path
) -> None:
    v = register(registry, color_bundle)
    client = TestClient(create_app(registry=registry))
    size = registry.db_path.stat().st_size
    r = client.post(f"/api/models/{v.id}/approve", json={"by": "mallory", "note": "x" * 20_000_000})
    assert r.status_code == 400 and r.json()["detail"].startswith("note: 20000000 characters")
    assert registry.get(v.id).status == "PendingManualApproval"
    assert registry.db_path.stat().st_size == size


def test_fleet_rollback_needs_a_reason_and_is_audited(
    registry: SqliteRegistry, color_bundle: Path, mqtt: MqttDeployer, broker: Broker, prefix: str
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    client = TestClient(create_app(registry=registry, deployer=mqtt))
    for v in (v1, v2):
        client.post(f"/api/models/{v.id}/approve", json={"by": "ana"})
    assert client.post(f"/api/models/{v1.id}/deploy").status_code == 409
    assert client.post(f"/api/models/{v1.id}/deploy", json={"device": None}).status_code == 409

    r = client.post(f"/api/models/{v1.id}/deploy", json={"by": "bo", "reason": "lids"})
    assert r.status_code == 200 and r.json()["published"] is True
    history = client.get(f"/api/models/{v1.id}").json()["history"]
    assert history[-1] | {"at": ""} == {
        "version": v1.id, "action": "rollback", "by": "bo", "at": "", "note": "lids"
    }  # fmt: skip
    assert [m["version"] for m in retained(broker, f"{prefix}/fleet/deployment")] == [v1.id]  # type: ignore[index]


def test_an_approval_retracted_by_a_racing_rejection_is_409(
    registry: SqliteRegistry, color_bundle: Path, mqtt: MqttDeployer
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    v1 = register(registry, color_bundle)
    slow = SlowDeployer(mqtt)
    client = TestClient(create_app(registry=registry, deployer=slow))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(client.post, f"/api/models/{v1.id}/approve", json={"by": "ana"})
        assert slow.entered.wait(10)
        registry.reject(v1.id, reason="wrong labels", by="bo")
        slow.release.set()
        r = future.result(timeout=30)
    assert r.status_code == 409 and r.json()["retracted"] is True
    assert "was Rejected while its deployment was being published" in r.json()["detail"]


def test_a_damaged_artifact_is_not_approved(registry: SqliteRegistry, color_bundle: Path) -> None:
    v1 = register(registry, color_bundle)
    registry.artifact_path(v1.id).write_bytes(b"corrupt")
    r = TestClient(create_app(registry=registry)).post(
        f"/api/models/{v1.id}/approve", json={"by": "ana"}
    )
    assert r.status_code == 400 and "damaged" in r.json()["detail"]
    assert registry.get(v1.id).status == "PendingManualApproval"
