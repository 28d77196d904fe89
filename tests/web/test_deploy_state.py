"""The REST API refuses what would make the deployment state inconsistent, with a 4xx."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.deploy.test_deploy_state import SlowDeployer, deployer, retained
from tests.helpers import Broker
from tests.registry.fixtures import register
from tests.web.conftest import PASSWORD, basic, local_client
from whichbin.deploy import MqttDeployer
from whichbin.registry.local import SqliteRegistry
from whichbin.security.users import UserStore
from whichbin.web import create_app

HUGE = "99999999999999999999999"
ANA = basic("ana")  # an approver (the users fixture)


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
    users: UserStore,
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    client = local_client(create_app(registry=registry, deployer=mqtt), headers=ANA)
    for v in (v1, v2):
        assert client.post(f"/api/models/{v.id}/approve", json={"by": "ana"}).status_code == 200
    r = client.post(f"/api/models/{v1.id}/deploy", json={"device": device})
    assert r.status_code == 400 and r.json()["detail"].startswith("device ")
    assert [m["version"] for m in retained(broker, f"{prefix}/fleet/deployment")] == [v2.id]  # type: ignore[index]
    assert registry.latest_approved("trash-classifier").id == v2.id  # type: ignore[union-attr]
    # Without a broker the device id is still checked first.
    r = local_client(create_app(registry=registry), headers=ANA).post(
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
    registry: SqliteRegistry, color_bundle: Path, method: str, path: str, users: UserStore
) -> None:
    register(registry, color_bundle)
    client = local_client(create_app(registry=registry), raise_server_exceptions=False)
    client.headers.update(ANA)
    bodies = {"approve": {"by": "ana"}, "reject": {"reason": "x"}, "deploy": {}}
    body = bodies[path.rsplit("/", 1)[1]] if method == "post" else None
    r = client.request(method.upper(), path, json=body)
    assert r.status_code in (400, 404), r.text


def test_a_huge_note_is_400_and_stores_nothing(
    registry: SqliteRegistry, color_bundle: Path, users: UserStore
) -> None:
    v = register(registry, color_bundle)
    client = local_client(create_app(registry=registry), headers=ANA)
    size = registry.db_path.stat().st_size
    r = client.post(f"/api/models/{v.id}/approve", json={"by": "mallory", "note": "x" * 20_000})
    assert r.status_code == 400 and r.json()["detail"].startswith("note: 20000 characters")
    # A 20 MB note never reaches the registry: the body limit refuses it first.
    r = client.post(f"/api/models/{v.id}/approve", json={"by": "mallory", "note": "x" * 20_000_000})
    assert r.status_code == 413
    assert registry.get(v.id).status == "PendingManualApproval"
    assert registry.db_path.stat().st_size == size


def test_fleet_rollback_needs_a_reason_and_is_audited(
    registry: SqliteRegistry,
    color_bundle: Path,
    mqtt: MqttDeployer,
    broker: Broker,
    prefix: str,
    users: UserStore,
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    users.add("bo", "approver", PASSWORD)  # the audit trail names the login, not a body field
    client = local_client(create_app(registry=registry, deployer=mqtt), headers=ANA)
    for v in (v1, v2):
        client.post(f"/api/models/{v.id}/approve", json={"by": "ana"})
    assert client.post(f"/api/models/{v1.id}/deploy").status_code == 409
    assert client.post(f"/api/models/{v1.id}/deploy", json={"device": None}).status_code == 409

    r = client.post(
        f"/api/models/{v1.id}/deploy", json={"by": "cy", "reason": "lids"}, headers=basic("bo")
    )
    assert r.status_code == 200 and r.json()["published"] is True
    history = client.get(f"/api/models/{v1.id}").json()["history"]
    assert history[-1] | {"at": ""} == {
        "version": v1.id, "action": "rollback", "by": "bo", "at": "", "note": "lids"
    }  # fmt: skip
    assert [m["version"] for m in retained(broker, f"{prefix}/fleet/deployment")] == [v1.id]  # type: ignore[index]


def test_an_approval_retracted_by_a_racing_rejection_is_409(
    registry: SqliteRegistry, color_bundle: Path, mqtt: MqttDeployer, users: UserStore
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    v1 = register(registry, color_bundle)
    slow = SlowDeployer(mqtt)
    client = local_client(create_app(registry=registry, deployer=slow), headers=ANA)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(client.post, f"/api/models/{v1.id}/approve", json={"by": "ana"})
        assert slow.entered.wait(10)
        registry.reject(v1.id, reason="wrong labels", by="bo")
        slow.release.set()
        r = future.result(timeout=30)
    assert r.status_code == 409 and r.json()["retracted"] is True
    assert "was Rejected while its deployment was being published" in r.json()["detail"]


def test_a_damaged_artifact_is_not_approved(
    registry: SqliteRegistry, color_bundle: Path, users: UserStore
) -> None:
    v1 = register(registry, color_bundle)
    registry.artifact_path(v1.id).write_bytes(b"corrupt")
    r = local_client(create_app(registry=registry), headers=ANA).post(
        f"/api/models/{v1.id}/approve", json={"by": "ana"}
    )
    assert r.status_code == 400 and "damaged" in r.json()["detail"]
    assert registry.get(v1.id).status == "PendingManualApproval"


@pytest.fixture()
def publishing(registry: SqliteRegistry, mqtt: MqttDeployer, users: UserStore) -> TestClient:
    """ana's client of a server that publishes to the test broker."""
    return local_client(create_app(registry=registry, deployer=mqtt), headers=ANA)


def test_rejecting_the_live_version_puts_the_fleet_back(
    publishing: TestClient,
    registry: SqliteRegistry,
    color_bundle: Path,
    broker: Broker,
    prefix: str,
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    client = publishing
    for v in (v1, v2):
        assert client.post(f"/api/models/{v.id}/approve").status_code == 200
    r = client.post(f"/api/models/{v2.id}/reject", json={"reason": "lids"})
    assert r.status_code == 200 and r.json()["status"] == "Rejected"
    assert r.json()["was_live"] is True and r.json()["retracted"] is True
    assert [m["version"] for m in retained(broker, f"{prefix}/fleet/deployment")] == [v1.id]  # type: ignore[index]

    # Publishing off: the rejection is recorded and the reply says the fleet still runs it.
    off = local_client(create_app(registry=registry), headers=ANA)
    r = off.post(f"/api/models/{v1.id}/reject", json={"reason": "cups"})
    assert r.status_code == 200 and r.json()["was_live"] is True
    assert r.json()["retracted"] is False and "devices still run it" in r.json()["warning"]
