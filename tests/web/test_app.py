"""The REST API, artifact serving and dashboard through FastAPI's TestClient."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import free_port, wait_for
from tests.helpers import Broker, Recorder
from tests.registry.fixtures import BAD_REASONS, register
from tests.web.conftest import basic, local_client
from whichbin.config import DeployConfig, MqttConfig, Settings
from whichbin.deploy import MqttDeployer
from whichbin.registry.local import SqliteRegistry
from whichbin.security.users import UserStore
from whichbin.web import create_app

ANA = basic("ana")


@pytest.fixture()
def client(registry: SqliteRegistry) -> TestClient:
    return local_client(create_app(registry=registry))


def test_list_show_and_health(
    client: TestClient, registry: SqliteRegistry, color_bundle: Path
) -> None:
    register(registry, color_bundle)
    register(registry, color_bundle, passed=False)
    r = client.get("/api/models")
    assert r.status_code == 200
    assert [v["id"] for v in r.json()] == ["trash-classifier/1", "trash-classifier/2"]
    assert client.get("/api/models", params={"name": "nope"}).json() == []

    r = client.get("/api/models/trash-classifier/2")
    assert r.json()["reasons"] == BAD_REASONS and r.json()["history"][0]["action"] == "register"
    r = client.get("/api/models/trash-classifier/9")
    assert r.status_code == 404 and "trash-classifier/9" in r.json()["detail"]
    assert client.get("/api/models/trash-classifier/approved").status_code == 404

    health = client.get("/healthz").json()
    assert health == {
        "status": "ok",
        "registry": registry.uri,
        "versions": 2,
        "deploy_on_approval": False,
    }


def test_approve_and_reject_rules(
    client: TestClient, registry: SqliteRegistry, color_bundle: Path, users: UserStore
) -> None:
    register(registry, color_bundle)
    register(registry, color_bundle, passed=False)
    r = client.post("/api/models/trash-classifier/2/approve", json={"by": "ana"}, headers=ANA)
    assert r.status_code == 409 and BAD_REASONS[0] in r.json()["detail"]
    r = client.post("/api/models/trash-classifier/1/approve", json={"bogus": 1}, headers=ANA)
    assert r.status_code == 422

    r = client.post("/api/models/trash-classifier/1/approve", json={"note": "ok"}, headers=ANA)
    assert r.status_code == 200
    body = r.json()
    assert body["version"]["status"] == "Approved" and body["published"] is False
    assert "publishing is off" in body["detail"]
    assert client.get("/api/models/trash-classifier/approved").json()["id"] == "trash-classifier/1"

    r = client.post(
        "/api/models/trash-classifier/2/reject", json={"reason": "gate", "by": "bo"}, headers=ANA
    )
    assert r.status_code == 200 and r.json()["status"] == "Rejected"
    r = client.post("/api/models/trash-classifier/2/reject", json={"reason": "again"}, headers=ANA)
    assert r.status_code == 409 and "already rejected" in r.json()["detail"]
    r = client.post("/api/models/trash-classifier/1/deploy", headers=ANA)
    assert r.status_code == 409  # no broker


def test_web_approval_publishes_deployment(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str, users: UserStore
) -> None:
    register(registry, color_bundle)
    settings = Settings(
        mqtt=MqttConfig(url=broker.url, prefix=prefix),
        deploy=DeployConfig(artifact_base_url="http://h:1"),
    )
    client = local_client(create_app(settings, registry=registry), headers=ANA)
    r = client.post("/api/models/trash-classifier/1/approve", json={"by": "ana"})
    assert r.status_code == 200 and r.json()["published"] is True
    late = Recorder(broker.url, [f"{prefix}/fleet/deployment"])
    try:
        assert wait_for(lambda: late.payloads(f"{prefix}/fleet/deployment"), timeout=5)
        msg = late.payloads(f"{prefix}/fleet/deployment")[0]
    finally:
        late.close()
    assert msg["sha256"] == registry.get("1").sha256  # type: ignore[index]
    assert msg["url"] == "http://h:1/artifacts/trash-classifier/1/model.onnx"  # type: ignore[index]

    r = client.post("/api/models/trash-classifier/1/deploy", json={"device": "cam1"})
    assert r.status_code == 200 and r.json()["topic"] == f"{prefix}/cam1/deployment"


def test_web_approval_with_broker_down_is_502_but_recorded(
    registry: SqliteRegistry, color_bundle: Path, prefix: str, users: UserStore
) -> None:
    register(registry, color_bundle)
    dead = MqttDeployer(
        MqttConfig(url=f"mqtt://127.0.0.1:{free_port()}", prefix=prefix), timeout=0.5
    )
    client = local_client(create_app(registry=registry, deployer=dead), headers=ANA)
    r = client.post("/api/models/trash-classifier/1/approve", json={"by": "ana"})
    assert r.status_code == 502
    assert "NOT published" in r.json()["detail"] and r.json()["published"] is False
    assert "once the broker is reachable" in r.json()["detail"]
    assert registry.get("1").status == "Approved"
    assert client.post("/api/models/trash-classifier/1/deploy").status_code == 502


def test_artifact_download_headers(
    client: TestClient, registry: SqliteRegistry, color_bundle: Path
) -> None:
    v = register(registry, color_bundle)
    registry.approve("1", by="ana")  # approved artifacts are public
    r = client.get("/artifacts/trash-classifier/1/model.onnx")
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == v.sha256
    assert r.headers["x-sha256"] == v.sha256 and r.headers["etag"] == f'"{v.sha256}"'
    assert r.headers["content-type"] == "application/octet-stream"
    r = client.get(
        "/artifacts/trash-classifier/1/model.onnx", headers={"If-None-Match": f'"{v.sha256}"'}
    )
    assert r.status_code == 304
    assert client.head("/artifacts/trash-classifier/1/model.onnx").headers["x-sha256"] == v.sha256
    assert client.get("/artifacts/trash-classifier/2/model.onnx").status_code == 404
    assert client.get("/artifacts/bad name/1/model.onnx").status_code == 404


def test_dashboard_lists_versions(
    client: TestClient,
    registry: SqliteRegistry,
    color_bundle: Path,
    tmp_path: Path,
    users: UserStore,
) -> None:
    assert "No model versions yet" in client.get("/").text
    report = tmp_path / "eval"
    report.mkdir()
    (report / "report.html").write_text("<h1>confusion matrix</h1>")
    (report / "secret.txt").write_text("x")
    register(registry, color_bundle, report=report)
    register(registry, color_bundle, passed=False)
    registry.approve("1", by="ana")
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for text in ("trash-classifier/1", "trash-classifier/2", "0.953", "0.880", "failed", "ana"):
        assert text in html
    assert "bin_accuracy 0.510 &lt; 0.800" in html  # escaped
    assert "Approved (current)" in html
    approver_html = client.get("/", headers=ANA).text
    assert 'name="reason" placeholder="reason" required maxlength="2000"' in approver_html
    assert 'href="/reports/trash-classifier/1/"' in html
    assert "confusion matrix" in client.get("/reports/trash-classifier/1/").text
    assert r.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert r.headers["x-frame-options"] == "DENY"
    # Reports are served from the dashboard's origin: sandboxed, so a script in one cannot
    # act as the logged-in user.
    for url in ("/reports/trash-classifier/1/", "/reports/trash-classifier/1/secret.txt"):
        headers = client.get(url).headers
        assert headers["content-security-policy"] == "sandbox", url
        assert headers["x-content-type-options"] == "nosniff", url
    assert client.get("/reports/trash-classifier/1/secret.txt").status_code == 200
    escape = "/reports/trash-classifier/1/" + "..%2F" * 4 + "registry.db"  # would exist
    assert (registry.root / "registry.db").exists() and client.get(escape).status_code == 404
    assert client.get("/reports/trash-classifier/2/").status_code == 401  # pending: log in
    assert client.get("/reports/trash-classifier/2/", headers=basic("vic")).status_code == 404


@pytest.fixture()
def signing_with(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str, users: UserStore
) -> Callable[[Path], TestClient]:
    """One pending version; ana's client of a server whose config file names the given
    key as ``deploy.signing_key`` (and publishes to the test broker)."""
    register(registry, color_bundle)

    def client(key: Path) -> TestClient:
        mqtt = MqttConfig(url=broker.url, prefix=prefix)
        settings = Settings(mqtt=mqtt, deploy=DeployConfig(signing_key=str(key)))
        return local_client(create_app(settings, registry=registry), headers=ANA)

    return client


def test_web_approval_signs_with_the_key_its_config_names(
    signing_with: Callable[[Path], TestClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's ``deploy.signing_key`` (config file), not only the environment's."""
    from tests.helpers import SigningKey

    key = SigningKey.create(tmp_path / "keys")
    monkeypatch.delenv("WHICHBIN_DEPLOY__SIGNING_KEY", raising=False)
    client = signing_with(key.path)
    r = client.post("/api/models/trash-classifier/1/approve")
    assert r.status_code == 200, r.text
    assert r.json()["deployment"]["key_id"] == key.signer.key_id
    r = client.post("/api/models/trash-classifier/1/deploy", json={"device": "cam1"})
    assert r.status_code == 200, r.text
    assert r.json()["deployment"]["key_id"] == key.signer.key_id


def test_a_missing_signing_key_is_a_config_error_not_a_broker_one(
    signing_with: Callable[[Path], TestClient], registry: SqliteRegistry, tmp_path: Path
) -> None:
    """No key: the reply names the key and how to create it, with no broker hint and no
    502 (the broker is fine)."""
    client = signing_with(tmp_path / "none.pem")
    r = client.post("/api/models/trash-classifier/1/approve")
    detail = r.json()["detail"]
    assert r.status_code == 400 and r.json()["published"] is False
    assert "NOT published" in detail and "whichbin keys create" in detail
    assert "broker" not in detail and "--mqtt" not in detail
    assert registry.get("1").status == "Approved"
    r = client.post("/api/models/trash-classifier/1/deploy")
    assert r.status_code == 400 and r.json()["detail"].startswith("no signing key at ")
