"""``whichbin registry`` through the real root app, a real registry and a real broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import free_port, wait_for
from tests.helpers import Broker, Recorder
from tests.registry.fixtures import BAD_REASONS, register
from whichbin.cli.main import app
from whichbin.deploy import fetch_artifact
from whichbin.registry import ApprovalStatus
from whichbin.registry.local import SqliteRegistry

runner = CliRunner()


def run(*args: str) -> object:
    return runner.invoke(app, [str(a) for a in args])


def test_list_and_show(registry: SqliteRegistry, color_bundle: Path) -> None:
    register(registry, color_bundle)
    register(registry, color_bundle, passed=False)
    r = run("registry", "list", "--registry", registry.root, "--json")
    assert r.exit_code == 0, r.output
    docs = json.loads(r.stdout)
    assert [d["id"] for d in docs] == ["trash-classifier/1", "trash-classifier/2"]
    assert docs[1]["gate"] == "failed" and docs[0]["status"] == "PendingManualApproval"

    r = run("registry", "list", "--registry", registry.root)
    assert r.exit_code == 0 and "trash-classifier/2" in r.stdout and "0.953" in r.stdout

    r = run("registry", "show", "2", "--registry", registry.root, "--json")
    doc = json.loads(r.stdout)
    assert doc["id"] == "trash-classifier/2" and doc["reasons"] and doc["lineage"]["code_version"]
    assert doc["history"][0]["action"] == "register"

    r = run("registry", "show", "trash-classifier/1", "--registry", registry.root)
    assert r.exit_code == 0 and "manifest_hash" in r.stdout

    r = run("registry", "show", "trash-classifier/9", "--registry", registry.root)
    assert r.exit_code == 1 and "trash-classifier/9" in r.stderr


def test_registry_from_environment(
    registry: SqliteRegistry, color_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(registry, color_bundle)
    monkeypatch.setenv("WHICHBIN_REGISTRY", str(registry.root))
    r = run("registry", "list", "--json")
    assert [d["id"] for d in json.loads(r.stdout)] == ["trash-classifier/1"]


def test_failed_gate_approval_exits_1_with_clear_error(
    registry: SqliteRegistry, color_bundle: Path
) -> None:
    v = register(registry, color_bundle, passed=False)
    r = run("registry", "approve", v.id, "--registry", registry.root, "--no-deploy", "--by", "ana")
    assert r.exit_code == 1
    assert "trash-classifier/1 failed the quality gate" in r.stderr
    assert "bin_accuracy 0.510 < 0.800" in r.stderr
    assert r.stdout == ""
    assert registry.get(v.id).status == ApprovalStatus.PENDING


def test_approve_publishes_retained_deployment_for_late_subscribers(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str, tmp_path: Path
) -> None:
    v = register(registry, color_bundle)
    r = run(
        "registry", "approve", v.id, "--registry", registry.root, "--by", "ana",
        "--note", "ship it", "--mqtt", broker.url, "--prefix", prefix, "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["published"] is True and out["topic"] == f"{prefix}/fleet/deployment"

    late = Recorder(broker.url, [f"{prefix}/#"])  # subscribes only after the approval
    try:
        topic = f"{prefix}/fleet/deployment"
        assert wait_for(lambda: late.payloads(topic), timeout=5)
        msg = late.payloads(topic)[0]
        assert all(retained for t, _, retained in late.messages if t == topic)
    finally:
        late.close()
    assert isinstance(msg, dict)
    assert msg["version"] == "trash-classifier/1" and msg["approved_by"] == "ana"
    assert msg["sha256"] == registry.get(v.id).sha256 and msg["ts"].endswith("Z")
    assert msg["v"] == 1
    fetched = fetch_artifact(msg["url"], tmp_path / "edge" / "model.onnx", msg["sha256"])
    assert fetched.read_bytes() == registry.artifact_path(v.id).read_bytes()


def test_unreachable_broker_records_approval_but_exits_1(
    registry: SqliteRegistry, color_bundle: Path, prefix: str
) -> None:
    v = register(registry, color_bundle)
    dead = f"mqtt://127.0.0.1:{free_port()}"
    r = run(
        "registry", "approve", v.id, "--registry", registry.root, "--by", "ana",
        "--mqtt", dead, "--timeout", "1", "--prefix", prefix, "--json",
    )  # fmt: skip
    assert r.exit_code == 1
    assert "approved" in r.stderr and "NOT published" in r.stderr
    assert "whichbin registry deploy trash-classifier/1" in r.stderr
    assert f"--mqtt {dead}" in r.stderr  # the retry hint names the broker it was given
    out = json.loads(r.stdout)
    assert out["published"] is False and out["deployment"] is None
    assert registry.get(v.id).status == ApprovalStatus.APPROVED

    r = run(
        "registry", "deploy", v.id, "--registry", registry.root, "--mqtt", dead, "--timeout", "1"
    )
    assert r.exit_code == 1 and "cannot reach the MQTT broker" in r.stderr


def test_approve_signs_with_the_key_its_config_file_names(
    registry: SqliteRegistry,
    color_bundle: Path,
    broker: Broker,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.helpers import SigningKey
    from whichbin.security.signing import key_id

    key = SigningKey.create(tmp_path / "keys")
    monkeypatch.delenv("WHICHBIN_DEPLOY__SIGNING_KEY", raising=False)
    config = tmp_path / "whichbin.yaml"
    config.write_text(f"deploy:\n  signing_key: {key.path}\n")
    v = register(registry, color_bundle)
    rec = Recorder(broker.url, [f"{prefix}/fleet/deployment"])
    try:
        r = run(
            "registry", "approve", v.id, "--registry", registry.root, "--config", str(config),
            "--mqtt", broker.url, "--prefix", prefix,
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        assert wait_for(lambda: rec.payloads(f"{prefix}/fleet/deployment"))
        sent = rec.payloads(f"{prefix}/fleet/deployment")[-1]
        assert sent["key_id"] == key_id(key.signer.public_key)
    finally:
        rec.close()


def test_bad_mqtt_url_refused_before_anything_is_recorded(
    registry: SqliteRegistry, color_bundle: Path
) -> None:
    v = register(registry, color_bundle)
    r = run("registry", "approve", v.id, "--registry", registry.root, "--mqtt", "http://x")
    assert r.exit_code == 1 and "mqtt://" in r.stderr
    assert registry.get(v.id).status == ApprovalStatus.PENDING


def test_deploy_republishes_fleet_and_device(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    for v in (v1, v2):
        r = run(
            "registry", "approve", v.id, "--registry", registry.root, "--by", "ana", "--no-deploy"
        )
        assert r.exit_code == 0, r.output
        assert "not published" in r.stderr
    common = ["--registry", registry.root, "--mqtt", broker.url, "--prefix", prefix, "--json"]
    base = "http://models.local:8080"

    r = run("registry", "deploy", *common, "--artifact-base-url", base)  # latest approved
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["deployment"]["version"] == v2.id

    r = run("registry", "deploy", v1.id, *common)  # not current: refused for the fleet
    assert r.exit_code == 1 and "approve it again" in r.stderr

    r = run("registry", "deploy", v1.id, "--device", "cam1", *common)  # fine for one device
    assert r.exit_code == 0, r.output

    late = Recorder(broker.url, [f"{prefix}/#"])
    try:
        assert wait_for(lambda: len(late.messages) >= 2, timeout=5)
        fleet = late.payloads(f"{prefix}/fleet/deployment")[0]
        device = late.payloads(f"{prefix}/cam1/deployment")[0]
    finally:
        late.close()
    assert fleet["url"] == f"{base}/artifacts/trash-classifier/2/model.onnx"  # type: ignore[index]
    assert device["version"] == v1.id and device["url"].startswith("file://")  # type: ignore[index]


def test_reject_and_warning_for_current(registry: SqliteRegistry, color_bundle: Path) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    for v in (v1, v2):
        run("registry", "approve", v.id, "--registry", registry.root, "--by", "ana", "--no-deploy")
    r = run(
        "registry",
        "reject",
        v2.id,
        "--reason",
        "bad on lids",
        "--registry",
        registry.root,
        "--json",
        "--no-deploy",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["status"] == "Rejected"
    assert "devices still run it" in r.stderr and f"registry deploy {v1.id}" in r.stderr

    r = run("registry", "reject", v2.id, "--reason", "again", "--registry", registry.root)
    assert r.exit_code == 1 and "already rejected" in r.stderr
    r = run("registry", "reject", v1.id, "--registry", registry.root)
    assert r.exit_code == 2  # --reason is required: a usage error


def test_reject_of_the_live_version_retracts_it(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    mqtt = ("--registry", registry.root, "--mqtt", broker.url, "--prefix", prefix)
    for v in (v1, v2):
        assert run("registry", "approve", v.id, *mqtt).exit_code == 0
    rec = Recorder(broker.url, [f"{prefix}/fleet/deployment"])
    try:
        r = run("registry", "reject", v2.id, "--reason", "lids", *mqtt, "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["retracted"] is True
        assert f"the fleet is back on {v1.id}" in r.stderr
        assert wait_for(lambda: rec.payloads(f"{prefix}/fleet/deployment"))
        assert rec.payloads(f"{prefix}/fleet/deployment")[-1]["version"] == v1.id  # type: ignore[index]
    finally:
        rec.close()
    dead = ("--registry", registry.root, "--mqtt", f"mqtt://127.0.0.1:{free_port()}")
    r = run("registry", "reject", v1.id, "--reason", "cups", *dead, "--timeout", "0.5")
    assert r.exit_code == 1 and "NOT retracted" in r.stderr and "devices still run it" in r.stderr
    assert registry.get(v1.id).status == ApprovalStatus.REJECTED  # recorded all the same


@pytest.mark.parametrize(
    "command",
    [
        ["registry"],
        ["registry", "list"],
        ["registry", "show"],
        ["registry", "approve"],
        ["registry", "reject"],
        ["registry", "deploy"],
        ["web"],
    ],
)
def test_every_command_help_has_an_example(command: list[str]) -> None:
    r = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    assert "Example: whichbin " + " ".join(command) in r.stdout


def test_missing_registry_is_an_error_not_created(tmp_path: Path) -> None:
    r = run("registry", "list", "--registry", tmp_path / "typo")
    assert r.exit_code == 1 and "no registry here" in r.stderr
    assert not (tmp_path / "typo").exists()


def test_show_prints_accuracy_per_data_source(registry: SqliteRegistry, color_bundle: Path) -> None:
    per_source = {
        "real/takeaway": {
            "n": 80,
            "accuracy": 0.5,
            "bin_accuracy": 0.483,
            "bin_recall": {"compost": 0.33, "landfill": 0.49},
            "coverage": 0.93,
            "decided_accuracy": 0.494,
        },
        "trashnet": {"n": 300, "accuracy": 0.91, "bin_accuracy": 0.984, "bin_recall": {}},
    }
    registry.register(
        "trash-classifier",
        color_bundle,
        metrics={"accuracy": 0.8, "bin_accuracy": 0.9, "per_source": per_source},
        gate_passed=True,
        reasons=[],
        lineage={"sources": ["real/takeaway", "trashnet"]},
    )
    r = runner.invoke(
        app, ["registry", "show", "1", "--registry", str(registry.root)], env={"COLUMNS": "140"}
    )
    assert r.exit_code == 0, r.output
    assert "Test split per data source" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if "real/takeaway" in ln and "48.3" in ln)
    for cell in ("80", "48.3", "33.0/49.0/–", "93.0", "49.4"):
        assert cell in line, (cell, line)
    assert '"per_source"' not in r.stdout  # the table replaces the raw JSON
    r = run("registry", "show", "1", "--registry", registry.root, "--json")
    assert json.loads(r.stdout)["metrics"]["per_source"] == per_source


def test_show_is_readable_and_keeps_paths_whole_at_any_width(
    tmp_path: Path, color_bundle: Path
) -> None:
    reg = SqliteRegistry(tmp_path / ("a-long-directory-name-" * 5) / "registry")
    v = register(reg, color_bundle, passed=False)
    args = ["registry", "show", v.id, "--registry", str(reg.root)]
    narrow = runner.invoke(app, args, env={"COLUMNS": "40"})
    wide = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert narrow.exit_code == 0, narrow.output
    assert narrow.stdout == wide.stdout  # the same text whatever the terminal
    lines = narrow.stdout.splitlines()
    assert any(line.split() == ["artifact", v.artifact] for line in lines)  # one unbroken path
    assert any(line.split() == ["bin_accuracy", "0.510"] for line in lines)
    assert any(line.split() == ["manifest_hash", "m" * 16] for line in lines)
    assert "gate reasons" in narrow.stdout and BAD_REASONS[1] in narrow.stdout
    assert '"manifest_hash"' not in narrow.stdout and "{" not in narrow.stdout  # no raw JSON


def test_live_names_the_current_approval_and_list_marks_it(
    registry: SqliteRegistry, color_bundle: Path
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    r = run("registry", "live", "--registry", registry.root)
    assert r.exit_code == 1 and "no live version" in r.stderr and r.stdout == ""
    for v in (v1, v2):
        registry.approve(v.id, by="ana")

    r = run("registry", "live", "--registry", registry.root, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["id"] == v2.id and json.loads(r.stdout)["live"] is True
    r = run("registry", "live", "trash-classifier", "--registry", registry.root)
    assert r.stdout.startswith(f"{v2.id} is live: approved by ana")

    r = run("registry", "list", "--registry", registry.root, "--json")
    assert {d["id"]: d["live"] for d in json.loads(r.stdout)} == {v1.id: False, v2.id: True}
    r = run("registry", "list", "--registry", registry.root)
    rows = {line.split()[0]: line for line in r.stdout.splitlines() if "trash-classifier/" in line}
    assert "live" in rows[v2.id] and "live" not in rows[v1.id]
    assert "(live)" in run("registry", "show", v2.id, "--registry", registry.root).stdout
    assert "(live)" not in run("registry", "show", v1.id, "--registry", registry.root).stdout

    registry.reject(v2.id, reason="withdrawn", by="ana")  # the fleet goes back to v1
    r = run("registry", "live", "--registry", registry.root, "--json")
    assert json.loads(r.stdout)["id"] == v1.id
