"""The fleet topic carries the registry's current approval, and nothing else.

Against a real broker and a real SQLite registry: an approval racing a rejection, a
damaged artifact, a fleet rollback and a device pin.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.helpers import Broker, Recorder
from tests.registry.fixtures import register
from whichbin.config import MqttConfig
from whichbin.contract import Deployment
from whichbin.deploy import (
    DeploymentRefused,
    MqttDeployer,
    approve_and_deploy,
    deploy_version,
    reject_and_retract,
)
from whichbin.errors import ConfigError, RegistryError
from whichbin.registry import ApprovalStatus
from whichbin.registry.local import SqliteRegistry

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


@dataclass
class SlowDeployer:
    """A real MqttDeployer whose first send waits until the test lets it through."""

    inner: MqttDeployer
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def send(self, deployment: Deployment | None, device: str | None = None) -> str:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(10), "the test never released the deployer"
        return self.inner.send(deployment, device)

    def clear(self, device: str | None = None) -> str:
        return self.inner.clear(device)


def deployer(broker: Broker, prefix: str) -> MqttDeployer:
    """The real deployer, publishing under the test's own prefix."""
    return MqttDeployer(MqttConfig(url=broker.url, prefix=prefix))


def retained(broker: Broker, topic: str) -> list[dict | str]:
    """What a subscriber arriving now gets on ``topic``: the retained message, if any."""
    late = Recorder(broker.url, [topic])
    try:
        wait_for(lambda: late.payloads(topic), timeout=1.5)
        return late.payloads(topic)
    finally:
        late.close()


def approve_during_reject(registry: SqliteRegistry, vid: str, deployer: SlowDeployer):  # noqa: ANN201
    """Approve ``vid``; while its deployment is on the wire, reject it."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(approve_and_deploy, registry, vid, "ana", "", deployer, NOW)
        assert deployer.entered.wait(10)
        SqliteRegistry(registry.root).reject(vid, reason="wrong labels", by="bo")
        deployer.release.set()
        return future.result(timeout=30)


def test_a_rejection_that_wins_the_race_puts_the_fleet_back(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    mqtt = deployer(broker, prefix)
    assert approve_and_deploy(registry, v1.id, "ana", "", mqtt, NOW).published

    outcome = approve_during_reject(registry, v2.id, SlowDeployer(mqtt))
    assert outcome.retracted and not outcome.published
    assert outcome.version.status == ApprovalStatus.REJECTED
    assert f"{v2.id} was Rejected" in (outcome.error or "") and v1.id in (outcome.error or "")
    fleet = retained(broker, f"{prefix}/fleet/deployment")
    assert [m["version"] for m in fleet] == [v1.id]  # type: ignore[index]


def test_a_rejection_that_wins_the_race_with_no_other_approval_clears_the_fleet(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str
) -> None:
    v1 = register(registry, color_bundle)
    outcome = approve_during_reject(registry, v1.id, SlowDeployer(deployer(broker, prefix)))
    assert outcome.retracted and outcome.deployment is None
    assert "cleared" in (outcome.error or "")
    assert retained(broker, f"{prefix}/fleet/deployment") == []


def test_a_damaged_artifact_is_neither_approved_nor_published(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str
) -> None:
    v1 = register(registry, color_bundle)
    artifact = registry.artifact_path(v1.id)
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 0xFF
    artifact.write_bytes(bytes(data))

    with pytest.raises(RegistryError) as e:
        approve_and_deploy(registry, v1.id, "ana", "", deployer(broker, prefix), NOW)
    message = str(e.value)
    assert "\n" not in message and str(artifact) in message and "not approved" in message
    assert registry.get(v1.id).status == ApprovalStatus.PENDING
    assert retained(broker, f"{prefix}/fleet/deployment") == []


def test_deploying_an_older_version_to_the_fleet_is_an_audited_rollback(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    mqtt = deployer(broker, prefix)
    for v in (v1, v2):
        approve_and_deploy(registry, v.id, "ana", "", mqtt, NOW)
    with pytest.raises(DeploymentRefused, match="--reason"):
        deploy_version(registry, registry.get(v1.id), mqtt, NOW, by="bo")

    outcome = deploy_version(
        registry, registry.get(v1.id), mqtt, NOW, by="bo", reason="v2 confuses lids"
    )
    assert outcome.published and outcome.deployment and outcome.deployment.approved_by == "bo"
    assert registry.latest_approved("trash-classifier").id == v1.id  # type: ignore[union-attr]
    last = registry.history(v1.id)[-1]
    assert (last.action, last.by, last.note) == ("rollback", "bo", "v2 confuses lids")
    fleet = retained(broker, f"{prefix}/fleet/deployment")
    assert [m["version"] for m in fleet] == [v1.id]  # type: ignore[index]


@pytest.mark.parametrize("device", ["fleet", "", "+", "#", "cam/1"])
def test_a_device_deployment_never_reaches_the_fleet_or_a_wildcard(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str, device: str
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    mqtt = deployer(broker, prefix)
    approve_and_deploy(registry, v1.id, "ana", "", mqtt, NOW)
    approve_and_deploy(registry, v2.id, "ana", "", mqtt, NOW)
    with pytest.raises(ConfigError, match="^device "):
        deploy_version(registry, registry.get(v1.id), mqtt, NOW, device=device, by="mallory")
    assert [m["version"] for m in retained(broker, f"{prefix}/fleet/deployment")] == [v2.id]  # type: ignore[index]
    assert [e.action for e in registry.history(v1.id)] == ["register", "approve"]


def test_a_device_deployment_pins_the_device(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str
) -> None:
    v1 = register(registry, color_bundle)
    mqtt = deployer(broker, prefix)
    approve_and_deploy(registry, v1.id, "ana", "", mqtt, NOW)
    pinned = deploy_version(registry, registry.get(v1.id), mqtt, NOW, device="cam1")
    assert pinned.pin is not None and pinned.topic == f"{prefix}/cam1/deployment"
    assert [(p.device, p.version) for p in registry.pins()] == [("cam1", v1.id)]

    v2 = register(registry, color_bundle)  # a later approval says who does not follow
    later = approve_and_deploy(registry, v2.id, "ana", "", mqtt, NOW)
    assert [p.device for p in later.pinned] == ["cam1"]
    assert later.to_dict()["pinned"][0]["version"] == v1.id


def test_rejecting_the_live_version_retracts_its_fleet_deployment(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str
) -> None:
    """The fleet's retained deployment follows a rejection: back on the now-current
    approval, then cleared when none is left."""
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    mqtt = deployer(broker, prefix)
    for v in (v1, v2):
        approve_and_deploy(registry, v.id, "ana", "", mqtt, NOW)

    back = reject_and_retract(registry, v2.id, "confuses lids", "bo", mqtt, NOW)
    assert back.was_live and back.retracted and not back.error and not back.published
    assert back.version.status == ApprovalStatus.REJECTED
    assert back.deployment is not None and back.deployment.version == v1.id
    fleet = retained(broker, f"{prefix}/fleet/deployment")
    assert [m["version"] for m in fleet] == [v1.id]  # type: ignore[index]

    cleared = reject_and_retract(registry, v1.id, "all wrong", "bo", mqtt, NOW)
    assert cleared.was_live and cleared.retracted and cleared.deployment is None
    assert retained(broker, f"{prefix}/fleet/deployment") == []


def test_rejecting_a_version_that_is_not_live_publishes_nothing(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    mqtt = deployer(broker, prefix)
    approve_and_deploy(registry, v1.id, "ana", "", mqtt, NOW)
    approve_and_deploy(registry, v2.id, "ana", "", mqtt, NOW)
    outcome = reject_and_retract(registry, v1.id, "old", "bo", mqtt, NOW)
    assert not outcome.was_live and not outcome.retracted and outcome.topic is None
    assert [m["version"] for m in retained(broker, f"{prefix}/fleet/deployment")] == [v2.id]  # type: ignore[index]


def test_rejecting_the_live_version_without_a_deployer_warns(
    registry: SqliteRegistry, color_bundle: Path
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    for v in (v1, v2):
        approve_and_deploy(registry, v.id, "ana", "", None, NOW)
    outcome = reject_and_retract(registry, v2.id, "lids", "bo", None, NOW)
    assert outcome.was_live and not outcome.retracted and not outcome.error
    assert "devices still run it" in (outcome.warning or "")
    assert f"whichbin registry deploy {v1.id}" in (outcome.warning or "")
