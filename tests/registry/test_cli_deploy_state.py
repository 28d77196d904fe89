"""``whichbin registry deploy --device``, ``devices``, ``unpin`` and rollbacks, end to end.

Real root app, real registry, real broker, and a real edge follower reading the topics.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import wait_for
from tests.deploy.test_deploy_state import retained
from tests.helpers import Broker
from tests.registry.fixtures import register
from whichbin.cli.main import app
from whichbin.contract import Deployment
from whichbin.registry.local import SqliteRegistry

runner = CliRunner()


def run(*args: object) -> object:
    return runner.invoke(app, [str(a) for a in args])


def test_pin_list_and_unpin_a_device(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    common = ["--registry", registry.root, "--mqtt", broker.url, "--prefix", prefix]
    assert run("registry", "approve", v1.id, "--by", "ana", *common).exit_code == 0

    r = run("registry", "deploy", v1.id, "--device", "cam1", "--by", "cy", "--reason", "trial",
            *common, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["pin"]["device"] == "cam1"
    assert "cam1 is pinned to trash-classifier/1" in r.stderr

    r = run("registry", "approve", v2.id, "--by", "ana", *common)
    assert r.exit_code == 0 and "cam1 is pinned to trash-classifier/1" in r.stderr
    r = run("registry", "devices", "--registry", registry.root, "--json")
    assert r.exit_code == 0
    assert [(p["device"], p["version"], p["by"], p["reason"]) for p in json.loads(r.stdout)] == [
        ("cam1", v1.id, "cy", "trial")
    ]
    r = run("registry", "devices", "--registry", registry.root)
    assert r.exit_code == 0 and "cam1" in r.stdout and v1.id in r.stdout

    # The device topic overrides the fleet's (see the follower) ... until it is unpinned.
    device_topic = f"{prefix}/cam1/deployment"
    pinned = retained(broker, device_topic)
    assert [Deployment.model_validate(m).version for m in pinned] == [v1.id]
    r = run("registry", "unpin", "cam1", "--by", "dee", *common, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["unpinned"]["version"] == v1.id
    assert "follows the fleet again" in r.stderr
    assert retained(broker, device_topic) == []
    assert (
        json.loads(run("registry", "devices", "--registry", registry.root, "--json").stdout) == []
    )
    history = json.loads(
        run("registry", "show", v1.id, "--registry", registry.root, "--json").stdout
    )
    assert [(e["action"], e["by"]) for e in history["history"]][-2:] == [
        ("pin", "cy"),
        ("unpin", "dee"),
    ]
    r = run("registry", "devices", "--registry", registry.root)
    assert r.exit_code == 0 and "No pinned devices" in r.stderr


@pytest.mark.parametrize("device", ["fleet", "#", "+", "a/b", ""])
def test_bad_device_ids_are_one_line_errors(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str, device: str
) -> None:
    v1 = register(registry, color_bundle)
    common = ["--registry", registry.root, "--mqtt", broker.url, "--prefix", prefix]
    run("registry", "approve", v1.id, "--by", "ana", "--no-deploy", "--registry", registry.root)
    for args in (["deploy", v1.id, "--device", device], ["unpin", device]):
        r = run("registry", *args, *common)
        assert r.exit_code == 1, r.output
        assert len(r.stderr.strip().splitlines()) == 1
        assert "not a device id" in r.stderr or "reserved for the fleet" in r.stderr
    assert retained(broker, f"{prefix}/fleet/deployment") == []
    assert registry.pins() == []


def test_fleet_rollback_from_the_command_line_is_recorded(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    common = ["--registry", registry.root, "--mqtt", broker.url, "--prefix", prefix]
    for v in (v1, v2):
        assert run("registry", "approve", v.id, "--by", "ana", *common).exit_code == 0
    r = run("registry", "deploy", v1.id, "--by", "bo", "--reason", "v2 misreads lids", *common)
    assert r.exit_code == 0, r.output
    assert registry.latest_approved("trash-classifier").id == v1.id  # type: ignore[union-attr]
    last = registry.history(v1.id)[-1]
    assert (last.action, last.by, last.note) == ("rollback", "bo", "v2 misreads lids")
    assert wait_for(
        lambda: [m["version"] for m in retained(broker, f"{prefix}/fleet/deployment")] == [v1.id],  # type: ignore[index]
        timeout=5,
    )


def test_a_damaged_artifact_is_refused_in_one_line(
    registry: SqliteRegistry, color_bundle: Path
) -> None:
    v1 = register(registry, color_bundle)
    registry.artifact_path(v1.id).write_bytes(b"truncated")
    r = run("registry", "approve", v1.id, "--registry", registry.root, "--no-deploy")
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "damaged" in r.stderr and registry.get(v1.id).status == "PendingManualApproval"


@pytest.mark.parametrize("command", [["registry", "devices"], ["registry", "unpin"]])
def test_pin_commands_help_has_an_example(command: list[str]) -> None:
    r = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    assert "Example: whichbin " + " ".join(command) in r.stdout
