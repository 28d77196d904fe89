"""Deployment messages: built purely, published retained to a real broker."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for
from tests.helpers import Broker, Recorder
from tests.registry.fixtures import register
from whichbin.config import MqttConfig
from whichbin.contract import Deployment
from whichbin.deploy import (
    DeploymentRefused,
    MqttDeployer,
    approve_and_deploy,
    artifact_url,
    build_deployment,
    deploy_version,
    deployment_topic,
    publish_deployment,
)
from whichbin.errors import DeployError
from whichbin.registry.local import SqliteRegistry

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_build_deployment_is_pure_and_refuses_unapproved(
    registry: SqliteRegistry, color_bundle: Path
) -> None:
    v = register(registry, color_bundle)
    with pytest.raises(DeploymentRefused, match="PendingManualApproval"):
        build_deployment(v, "file:///x", NOW)
    v = registry.approve(v.id, by="ana")
    d = build_deployment(v, "http://h/a", NOW)
    assert d == Deployment(
        version="trash-classifier/1",
        sha256=v.sha256,
        url="http://h/a",
        ts="2026-03-01T12:30:00Z",
        approved_by="ana",
        size=v.size_bytes,
    )


def test_artifact_url_and_topics(registry: SqliteRegistry, color_bundle: Path) -> None:
    v = register(registry, color_bundle)
    assert (
        artifact_url(v, "http://h:8080/") == "http://h:8080/artifacts/trash-classifier/1/model.onnx"
    )
    assert artifact_url(v) == Path(v.artifact).as_uri()
    assert deployment_topic() == "whichbin/fleet/deployment"
    assert deployment_topic("p", "cam1") == "p/cam1/deployment"


def test_publish_is_retained_and_device_topic_overrides(broker: Broker, prefix: str) -> None:
    fleet = Deployment(version="m/1", sha256="a" * 64, url="file:///a", ts="t", approved_by="x")
    one = Deployment(version="m/2", sha256="b" * 64, url="file:///b", ts="t", approved_by="x")
    assert (
        publish_deployment(fleet, MqttConfig(url=broker.url, prefix=prefix))
        == f"{prefix}/fleet/deployment"
    )
    assert (
        publish_deployment(one, MqttConfig(url=broker.url, prefix=prefix), device="cam1")
        == f"{prefix}/cam1/deployment"
    )
    late = Recorder(broker.url, [f"{prefix}/#"])
    try:
        assert wait_for(lambda: len(late.messages) == 2, timeout=5)
        assert all(retained for _, _, retained in late.messages)
        assert late.payloads(f"{prefix}/fleet/deployment")[0]["sha256"] == "a" * 64  # type: ignore[index]
        assert late.payloads(f"{prefix}/cam1/deployment")[0]["version"] == "m/2"  # type: ignore[index]
    finally:
        late.close()


def test_publish_to_unreachable_broker_raises() -> None:
    d = Deployment(version="m/1", sha256="a" * 64, url="file:///a", ts="t")
    with pytest.raises(DeployError, match="cannot reach the MQTT broker at 127.0.0.1"):
        publish_deployment(d, MqttConfig(url=f"mqtt://127.0.0.1:{free_port()}"), timeout=0.5)


def test_approve_and_deploy_outcomes(
    registry: SqliteRegistry, color_bundle: Path, broker: Broker, prefix: str
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    ok = approve_and_deploy(
        registry, v1.id, "ana", "", MqttDeployer(MqttConfig(url=broker.url, prefix=prefix)), NOW
    )
    assert ok.published and ok.deployment and ok.deployment.sha256 == v1.sha256

    dead = MqttDeployer(
        MqttConfig(url=f"mqtt://127.0.0.1:{free_port()}", prefix=prefix), timeout=0.5
    )
    failed = approve_and_deploy(registry, v2.id, "ana", "", dead, NOW)
    assert not failed.published and "cannot reach" in (failed.error or "")
    assert failed.version.status == "Approved"

    with pytest.raises(DeploymentRefused, match="approve it again"):
        deploy_version(
            registry,
            registry.get(v1.id),
            MqttDeployer(MqttConfig(url=broker.url, prefix=prefix)),
            NOW,
        )
