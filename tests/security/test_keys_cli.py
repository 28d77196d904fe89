"""``whichbin keys create|show`` and approvals that sign with the key (or say they cannot)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import wait_for
from tests.helpers import Broker, Recorder
from tests.registry.fixtures import prefix, register, registry  # noqa: F401
from whichbin.cli.main import app
from whichbin.registry.local import SqliteRegistry
from whichbin.security.signing import Signer, TrustedKeys, verify_deployment

runner = CliRunner()


def run(*args: object) -> object:
    return runner.invoke(app, [str(a) for a in args])


def approve(version: str, registry: SqliteRegistry, broker: Broker, prefix: str) -> object:  # noqa: F811
    args = ["--registry", registry.root, "--mqtt", broker.url, "--prefix", prefix, "--by", "ana"]
    return run("registry", "approve", version, *args)


def test_create_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    key, pub = tmp_path / "k" / "signing.pem", tmp_path / "registry.pub.pem"
    r = run("keys", "create", "--key", key, "--public-out", pub, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (
        doc["key_id"] == Signer.from_file(key).key_id == next(iter(TrustedKeys.from_files([pub])))
    )
    assert doc["public_key"] == pub.read_text() and "PRIVATE" not in doc["public_key"]

    r = run("keys", "create", "--key", key)  # never overwritten by accident
    assert r.exit_code == 1 and "--force" in r.output and str(key) in r.output
    assert r.output.count("\n") == 1


def test_show_prints_the_key_id_and_public_key(tmp_path: Path) -> None:
    key = tmp_path / "signing.pem"
    assert run("keys", "create", "--key", key).exit_code == 0
    kid = Signer.from_file(key).key_id
    r = run("keys", "show", "--key", key)
    assert r.exit_code == 0 and f"key id: {kid}" in r.stdout
    assert "BEGIN PUBLIC KEY" in r.stdout and "PRIVATE" not in r.stdout
    pem = run("keys", "show", "--key", key, "--pem").stdout
    assert pem.startswith("-----BEGIN PUBLIC KEY")
    (tmp_path / "p.pem").write_text(pem)
    assert (
        json.loads(run("keys", "show", "--key", tmp_path / "p.pem", "--json").stdout)["key_id"]
        == kid
    )
    r = run("keys", "show", "--key", tmp_path / "missing.pem")
    assert r.exit_code == 1 and "missing.pem" in r.output and "keys create" in r.output


def test_default_location_comes_from_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHICHBIN_DEPLOY__SIGNING_KEY", str(tmp_path / "cfg.pem"))
    assert run("keys", "create").exit_code == 0
    assert (tmp_path / "cfg.pem").is_file()
    monkeypatch.delenv("WHICHBIN_DEPLOY__SIGNING_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert run("keys", "create").exit_code == 0
    assert (tmp_path / "xdg" / "whichbin" / "signing-key.pem").is_file()


def test_help_has_an_example() -> None:
    for cmd in (["keys", "create"], ["keys", "show"]):
        r = run(*cmd, "--help")
        assert r.exit_code == 0 and "Example" in r.output and "whichbin keys" in r.output


def test_approval_signs_the_deployment(
    registry: SqliteRegistry,  # noqa: F811
    color_bundle: Path,
    broker: Broker,
    prefix: str,  # noqa: F811
    signing_key,  # noqa: ANN001
) -> None:
    v = register(registry, color_bundle)
    rec = Recorder(broker.url, [f"{prefix}/fleet/deployment"])
    try:
        r = approve(v.id, registry, broker, prefix)
        assert r.exit_code == 0, r.output
        assert wait_for(lambda: rec.payloads(f"{prefix}/fleet/deployment"), 5)
        msg = rec.payloads(f"{prefix}/fleet/deployment")[-1]
    finally:
        rec.close()
    assert msg["size"] == v.size_bytes == Path(v.artifact).stat().st_size
    assert msg["key_id"] == signing_key.signer.key_id
    from whichbin.contract import Deployment

    verify_deployment(Deployment.model_validate(msg), TrustedKeys.from_files([signing_key.public]))


def test_approval_without_a_key_is_recorded_but_not_published(
    registry: SqliteRegistry,  # noqa: F811
    color_bundle: Path,
    broker: Broker,
    prefix: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v = register(registry, color_bundle)
    monkeypatch.setenv("WHICHBIN_DEPLOY__SIGNING_KEY", str(tmp_path / "none.pem"))
    r = approve(v.id, registry, broker, prefix)
    assert r.exit_code == 1
    assert "approved" in r.output and "NOT published" in r.output
    assert "no signing key" in r.output and "whichbin keys create" in r.output


def test_create_and_show_use_the_config_files_signing_key(tmp_path: Path) -> None:
    key = tmp_path / "configured.pem"
    config = tmp_path / "whichbin.yaml"
    config.write_text(f"deploy: {{signing_key: '{key}'}}\n")
    unset = {"WHICHBIN_DEPLOY__SIGNING_KEY": None}  # the test session sets one
    r = runner.invoke(app, ["keys", "create", "--config", str(config), "--json"], env=unset)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["path"] == str(key) and key.is_file()
    r = runner.invoke(app, ["keys", "show", "--config", str(config), "--json"], env=unset)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["key_id"] == Signer.from_file(key).key_id
