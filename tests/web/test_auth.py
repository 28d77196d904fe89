"""Issue 13's web findings, each as a test that fails on the unauthenticated API: who may
write, who may read what, the login throttle, the Host allow-list, CSRF and body limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.registry.fixtures import register
from tests.web.conftest import PASSWORD, basic, local_client
from whichbin.config import DeployConfig, Settings, WebConfig
from whichbin.registry.local import SqliteRegistry
from whichbin.security.users import UserStore
from whichbin.web import create_app

APPROVE = "/api/models/trash-classifier/1/approve"


@pytest.fixture()
def client(registry: SqliteRegistry, color_bundle: Path, users: UserStore) -> TestClient:
    """The app over a registry with one passing version (pending) and three users."""
    register(registry, color_bundle)
    return local_client(create_app(registry=registry))


def test_anonymous_approve_is_401_and_records_nothing(
    client: TestClient, registry: SqliteRegistry
) -> None:
    r = client.post(APPROVE, json={"by": "mallory"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    for path in ("/api/models/trash-classifier/1/reject", "/api/models/trash-classifier/1/deploy"):
        assert client.post(path, json={"reason": "x"}).status_code == 401
    v = registry.get("1")
    assert v.status == "PendingManualApproval" and v.approved_by is None
    assert [e.action for e in registry.history("1")] == ["register"]


def test_viewer_is_403_and_approved_by_is_the_login_not_the_body(
    client: TestClient, registry: SqliteRegistry
) -> None:
    r = client.post(APPROVE, json={"by": "mallory"}, headers=basic("vic"))
    assert r.status_code == 403 and "vic (viewer) may not approve" in r.json()["detail"]
    assert client.get("/api/me", headers=basic("vic")).json()["role"] == "viewer"

    r = client.post(APPROVE, json={"by": "mallory", "note": "lgtm"}, headers=basic("ana"))
    assert r.status_code == 200 and r.json()["version"]["approved_by"] == "ana"
    assert registry.get("1").approved_by == "ana"
    assert "mallory" not in str([e.model_dump() for e in registry.history("1")])
    r = client.post(
        "/api/models/trash-classifier/1/reject",
        json={"reason": "mislabels cups", "by": "mallory"},
        headers=basic("adm"),  # admins may do what approvers may
    )
    assert r.status_code == 200 and registry.history("1")[-1].by == "adm"


def test_api_token_authenticates_automation(
    client: TestClient, registry: SqliteRegistry, users: UserStore
) -> None:
    token = users.create_token("ana", "ci")
    r = client.post(APPROVE, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and registry.get("1").approved_by == "ana"
    bad = {"Authorization": "Bearer wb_" + "x" * 43}
    assert client.post(APPROVE, headers=bad).status_code == 401
    assert client.post(APPROVE, headers={"Authorization": "Digest x"}).status_code == 401
    assert client.post(APPROVE, headers={"Authorization": "Basic !!"}).status_code == 401


def test_failed_logins_are_throttled_per_client_and_user(client: TestClient) -> None:
    """Unthrottled before: 300 approvals in 6 s. Now five wrong passwords a minute, then
    429 with Retry-After, even for the right password."""
    wrong = {"username": "ana", "password": "wrong password!"}
    codes = [client.post("/api/login", json=wrong).status_code for _ in range(5)]
    assert codes == [401] * 5
    r = client.post("/api/login", json={"username": "ana", "password": PASSWORD})
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
    r = client.post(APPROVE, headers=basic("ana"))  # Basic counts against the same budget
    assert r.status_code == 429 and "retry in" in r.json()["detail"]
    # Another user from the same address is throttled too (guesses spread over names).
    assert client.post(APPROVE, headers=basic("adm")).status_code == 429


def test_throttle_by_user_name_whatever_the_address(
    registry: SqliteRegistry, color_bundle: Path, users: UserStore
) -> None:
    register(registry, color_bundle)
    app = create_app(registry=registry)
    wrong = basic("ana", "not the password")
    for address in range(5):
        c = local_client(app, client=(f"10.0.0.{address}", 5000))
        assert c.post(APPROVE, headers=wrong).status_code == 401
    other = local_client(app, client=("10.0.0.99", 5000))
    assert other.post(APPROVE, headers=basic("ana")).status_code == 429
    assert other.post(APPROVE, headers=basic("adm")).status_code == 200


def test_session_cookie_needs_the_csrf_token(client: TestClient, registry: SqliteRegistry) -> None:
    r = client.post("/api/login", json={"username": "ana", "password": PASSWORD})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    csrf = r.json()["csrf_token"]
    assert client.get("/api/me").json() == {
        "user": "ana",
        "role": "approver",
        "via": "session",
        "csrf_token": csrf,
    }
    assert client.post(APPROVE).status_code == 403  # the cookie alone is not enough
    r = client.post(APPROVE, headers={"X-CSRF-Token": "guess"})
    assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
    cross = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    assert client.post(APPROVE, headers=cross).status_code == 403
    same = {"X-CSRF-Token": csrf, "Origin": "http://localhost"}
    assert client.post(APPROVE, headers=same).status_code == 200
    assert registry.get("1").approved_by == "ana"

    assert client.post("/api/logout").json() == {"logged_out": True}
    assert client.get("/api/me").status_code == 401
    assert client.post(APPROVE, headers={"X-CSRF-Token": csrf}).status_code == 401


def test_basic_from_a_browser_on_another_site_is_refused(client: TestClient) -> None:
    headers = {**basic("ana"), "Origin": "http://evil.example"}
    assert client.post(APPROVE, headers=headers).status_code == 403


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:9999",  # another port on this host is another site
        "https://localhost",  # another scheme too
        "http://localhost:9999/dashboard",  # (as a Referer)
    ],
)
def test_same_host_other_port_or_scheme_is_cross_site(client: TestClient, origin: str) -> None:
    for header in ("Origin", "Referer"):
        r = client.post(APPROVE, headers={**basic("ana"), header: origin})
        assert r.status_code == 403 and "cross-site" in r.json()["detail"], (header, origin)


def test_same_origin_with_explicit_default_port_is_accepted(client: TestClient) -> None:
    r = client.post(APPROVE, headers={**basic("ana"), "Origin": "http://localhost:80"})
    assert r.status_code == 200


def test_session_cookie_is_secure_over_tls(
    registry: SqliteRegistry, color_bundle: Path, users: UserStore
) -> None:
    c = TestClient(create_app(registry=registry), base_url="https://localhost")
    r = c.post("/api/login", json={"username": "vic", "password": PASSWORD})
    assert r.status_code == 200 and "secure" in r.headers["set-cookie"].lower()


def test_removed_user_loses_their_session_and_tokens(client: TestClient, users: UserStore) -> None:
    token = users.create_token("ana")
    client.post("/api/login", json={"username": "ana", "password": PASSWORD})
    users.remove("ana")
    assert client.get("/api/me").status_code == 401
    assert client.post(APPROVE, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_session_ends_with_its_user_even_if_the_name_is_added_again(
    client: TestClient, users: UserStore
) -> None:
    """Removing ana and adding a new ana (another person, maybe another role) must not hand
    the new account the old session."""
    client.post("/api/login", json={"username": "ana", "password": PASSWORD})
    assert client.get("/api/me").json()["user"] == "ana"
    users.remove("ana")
    users.add("ana", "admin", "another password entirely")
    assert client.get("/api/me").status_code == 401


def test_pending_and_rejected_artifacts_and_reports_need_a_login(
    registry: SqliteRegistry, color_bundle: Path, users: UserStore, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    report.write_text("<h1>report</h1>")
    register(registry, color_bundle, report=report)
    register(registry, color_bundle, report=report)
    registry.approve("2", by="ana")
    c = local_client(create_app(registry=registry))
    for n, public in ((1, False), (2, True)):
        for url in (
            f"/artifacts/trash-classifier/{n}/model.onnx",
            f"/reports/trash-classifier/{n}/",
        ):
            assert c.get(url).status_code == (200 if public else 401), url
            assert c.get(url, headers=basic("vic")).status_code == 200, url
    registry.reject("2", reason="withdrawn", by="ana")
    assert c.get("/artifacts/trash-classifier/2/model.onnx").status_code == 401
    assert c.get("/healthz").status_code == 200 and c.get("/api/models").status_code == 200


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("localhost", 200),
        ("127.0.0.1:8080", 200),
        ("[::1]:8080", 200),
        ("registry.lan:8080", 200),  # deploy.artifact_base_url's host
        ("10.1.2.3", 200),  # web.host
        ("evil.example", 400),  # DNS rebinding: a foreign name resolving to this server
        ("localhost.evil.example", 400),
        ("", 400),
        ("local host", 400),
    ],
)
def test_host_allow_list(registry: SqliteRegistry, host: str, status: int) -> None:
    settings = Settings(
        web=WebConfig(publish=False, host="10.1.2.3"),
        deploy=DeployConfig(artifact_base_url="http://registry.lan:8080"),
    )
    c = TestClient(create_app(settings, registry=registry))
    r = c.get("/healthz", headers={"Host": host})
    assert r.status_code == status
    if status == 400:
        assert "web.allowed_hosts" in r.json()["detail"]


def test_testclient_default_host_is_refused_unless_listed(registry: SqliteRegistry) -> None:
    assert TestClient(create_app(registry=registry)).get("/healthz").status_code == 400
    anyone = Settings(web=WebConfig(publish=False, allowed_hosts=["*"]))
    assert TestClient(create_app(anyone, registry=registry)).get("/healthz").status_code == 200


def _chunks(total: int) -> Iterator[bytes]:
    for _ in range(total // 1024):
        yield b" " * 1024


def test_body_size_limit_declared_and_chunked(client: TestClient, registry: SqliteRegistry) -> None:
    big = b'{"note": "' + b"x" * 70_000 + b'"}'
    r = client.post(
        APPROVE, content=big, headers={**basic("ana"), "Content-Type": "application/json"}
    )
    assert r.status_code == 413 and "web.max_body_bytes" in r.json()["detail"]
    r = client.post(APPROVE, content=_chunks(80 * 1024), headers=basic("ana"))  # no length
    assert r.status_code == 413
    r = client.post(APPROVE, json={"note": "x" * 2001}, headers=basic("ana"))
    assert r.status_code == 400 and r.json()["detail"].startswith("note: 2001 characters")
    assert registry.get("1").status == "PendingManualApproval"
    r = client.post(APPROVE, content=_chunks(4 * 1024), headers=basic("ana"))
    assert r.status_code == 422  # within the limit, streamed bodies reach the route


def test_the_schema_states_the_text_limits_the_registry_enforces(client: TestClient) -> None:
    """Clients can read the limits from /openapi.json; a longer note or reason is a 400
    with the registry's one-line message (above), a longer ignored ``by`` a 422."""
    from whichbin.registry.base import MAX_ACTOR, MAX_NOTE

    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for model, field, limit in [
        ("ApproveRequest", "note", MAX_NOTE),
        ("RejectRequest", "reason", MAX_NOTE),
        ("DeployRequest", "reason", MAX_NOTE),
        ("ApproveRequest", "by", MAX_ACTOR),
        ("RejectRequest", "by", MAX_ACTOR),
        ("DeployRequest", "by", MAX_ACTOR),
    ]:
        prop = schemas[model]["properties"][field]
        limits = [p.get("maxLength") for p in [prop, *prop.get("anyOf", [])]]
        assert limit in limits, (model, field, prop)
    r = client.post(APPROVE, json={"by": "x" * (MAX_ACTOR + 1)}, headers=basic("ana"))
    assert r.status_code == 422


def test_no_users_store_refuses_every_write(registry: SqliteRegistry, color_bundle: Path) -> None:
    from whichbin.web.app import open_users

    register(registry, color_bundle)
    c = local_client(create_app(registry=registry))
    assert c.post(APPROVE, headers=basic("ana")).status_code == 401
    assert open_users(Settings(), type("R", (), {"uri": "s3://bucket/x"})()) is None  # type: ignore[arg-type]
