"""SageMaker approval → fleet deployment: the EventBridge handler and `registry watch`, with
moto's SageMaker, S3 and Secrets Manager and a real mosquitto."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.aws.conftest import verify
from tests.conftest import wait_for
from tests.helpers import Recorder
from tests.registry.fixtures import register
from whichbin.config import MqttConfig
from whichbin.deploy import MqttDeployer, fetch_artifact
from whichbin.deploy.sagemaker_events import (
    DETAIL_TYPE,
    ApprovalDeployer,
    handle_event,
    handler,
    watch_approvals,
)
from whichbin.registry import open_registry

GROUP = "trash-classifier"


def event(arn: str, status: str, group: str = GROUP) -> dict:
    """What EventBridge delivers for a model package state change."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": "aws.sagemaker",
        "account": "123456789012",
        "region": "us-east-1",
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": 1,
            "ModelPackageArn": arn,
            "ModelApprovalStatus": status,
        },
    }


def registered(aws: str, color_bundle: Path):  # noqa: ANN201
    """A registry with one passing version; returns (registry, version, arn)."""
    reg = open_registry(f"sagemaker://{GROUP}?bucket={aws}")
    version = register(reg, color_bundle)  # type: ignore[arg-type]
    arn = reg.sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"][0][
        "ModelPackageArn"
    ]
    return reg, version, arn


def set_status(reg, arn: str, status: str) -> None:  # noqa: ANN001
    """An approval (or rejection) made in the SageMaker console or API, not by whichbin."""
    # moto drops the metadata an update does not repeat (SageMaker keeps it): repeat it.
    props = reg.sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    reg.sm.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus=status, CustomerMetadataProperties=props
    )


@contextmanager
def fleet_deployments(url: str, prefix: str) -> Iterator[Callable[[], list]]:
    """Record the fleet deployment topic; yields a function returning what arrived."""
    topic = f"{prefix}/fleet/deployment"
    rec = Recorder(url, [topic])
    try:
        yield lambda: rec.payloads(topic)
    finally:
        rec.close()


def approval_deployer(url: str, prefix: str, key: Path) -> ApprovalDeployer:
    """What the Lambda handler builds: presigned S3 URLs, MQTT, the approver's key."""
    import boto3

    from whichbin.security.signing import Signer

    mqtt = MqttDeployer(MqttConfig(url=url, prefix=prefix))
    return ApprovalDeployer(boto3.client("s3"), mqtt, Signer.from_file(key))


def test_approved_event_publishes_a_signed_deployment_whose_url_downloads_the_artifact(
    aws: str, color_bundle: Path, broker, prefix: str, signing_key, tmp_path: Path
) -> None:
    reg, version, arn = registered(aws, color_bundle)
    set_status(reg, arn, "Approved")
    deploy = approval_deployer(broker.url, prefix, signing_key[0])
    with fleet_deployments(broker.url, prefix) as payloads:
        t0 = time.perf_counter()
        result = handle_event(event(arn, "Approved"), reg, deploy)
        assert wait_for(payloads)
        elapsed = time.perf_counter() - t0
    (payload,) = payloads()
    assert isinstance(payload, dict)
    assert result == {
        "published": True,
        "version": version.id,
        "topic": f"{prefix}/fleet/deployment",
        "sha256": version.sha256,
    }
    assert payload["version"] == "trash-classifier/1" and payload["sha256"] == version.sha256
    assert payload["url"].startswith("http") and "Signature" in payload["url"]  # presigned
    assert payload["size"] == color_bundle.stat().st_size
    verify(signing_key[1], payload)
    got = fetch_artifact(payload["url"], tmp_path / "device" / "model.onnx", payload["sha256"])
    assert got.read_bytes() == color_bundle.read_bytes()
    print(f"event → deployment message: {elapsed * 1000:.0f} ms")  # noqa: T201


@pytest.mark.parametrize("status", ["Rejected", "PendingManualApproval"])
def test_rejected_or_pending_publishes_nothing(
    aws: str, color_bundle: Path, broker, prefix: str, status: str, signing_key
) -> None:
    reg, _, arn = registered(aws, color_bundle)
    if status == "Rejected":
        set_status(reg, arn, status)
    deploy = approval_deployer(broker.url, prefix, signing_key[0])
    with fleet_deployments(broker.url, prefix) as payloads:
        result = handle_event(event(arn, status), reg, deploy)
        time.sleep(0.5)
    assert result["published"] is False and status in result["reason"]
    assert payloads() == []


def test_a_stale_approval_event_publishes_nothing(
    aws: str, color_bundle: Path, broker, prefix: str, signing_key
) -> None:
    """A retried (or late) event for version 1, after version 2 was approved, or for a
    version approved and then rejected, must not roll the fleet back; and is not an error."""
    reg, _, arn1 = registered(aws, color_bundle)
    register(reg, color_bundle)  # type: ignore[arg-type]
    reg.approve("1", by="ana")
    reg.approve("2", by="bo")
    deploy = approval_deployer(broker.url, prefix, signing_key[0])
    with fleet_deployments(broker.url, prefix) as payloads:
        stale = handle_event(event(arn1, "Approved"), reg, deploy, GROUP)
        reg.reject("2", reason="bad on lids", by="cy")
        arn2 = reg.sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
        arn2 = next(s["ModelPackageArn"] for s in arn2 if s["ModelPackageVersion"] == 2)
        rejected = handle_event(event(arn2, "Approved"), reg, deploy, GROUP)
        time.sleep(0.5)
    assert stale["published"] is False and "current: trash-classifier/2" in stale["reason"]
    assert rejected["published"] is False and "current: trash-classifier/1" in rejected["reason"]
    assert payloads() == []


def test_an_event_of_another_group_publishes_nothing(
    aws: str, color_bundle: Path, broker, prefix: str, signing_key
) -> None:
    reg, _, arn = registered(aws, color_bundle)
    set_status(reg, arn, "Approved")
    deploy = approval_deployer(broker.url, prefix, signing_key[0])
    with fleet_deployments(broker.url, prefix) as payloads:
        result = handle_event(event(arn, "Approved", "other-group"), reg, deploy, GROUP)
        time.sleep(0.5)
    assert result["published"] is False and "other-group" in result["reason"]
    assert payloads() == []


def test_lambda_handler_reads_its_key_from_secrets_manager(
    aws: str, color_bundle: Path, broker, prefix: str, signing_key, monkeypatch
) -> None:
    import boto3

    reg, version, arn = registered(aws, color_bundle)
    set_status(reg, arn, "Approved")
    secret = boto3.client("secretsmanager").create_secret(
        Name=f"whichbin/approver-{prefix}", SecretString=signing_key[0].read_text()
    )["ARN"]
    monkeypatch.setenv("WHICHBIN_MQTT_URL", broker.url)
    monkeypatch.setenv("WHICHBIN_MQTT_PREFIX", prefix)
    monkeypatch.setenv("WHICHBIN_SIGNING_SECRET", secret)
    with fleet_deployments(broker.url, prefix) as payloads:
        assert handler(event(arn, "Approved"), None)["published"]
        assert wait_for(payloads)
    (payload,) = payloads()
    assert isinstance(payload, dict) and payload["sha256"] == version.sha256
    verify(signing_key[1], payload)


def test_deployer_from_env_reads_its_argument_and_keeps_the_password_out_of_os_environ(
    aws: str, signing_key, monkeypatch
) -> None:
    import os

    import boto3

    from whichbin.deploy.sagemaker_events import approval_deployer_from_env

    monkeypatch.delenv("WHICHBIN_MQTT_PASSWORD", raising=False)
    sm = boto3.client("secretsmanager")
    key = sm.create_secret(Name="approver", SecretString=signing_key[0].read_text())["ARN"]
    password = sm.create_secret(Name="broker", SecretString="s3cret")["ARN"]
    env = {
        "WHICHBIN_MQTT_URL": "mqtts://registry@broker.example:8883",
        "WHICHBIN_MQTT_PASSWORD_SECRET": password,
        "WHICHBIN_SIGNING_SECRET": key,
        "WHICHBIN_MQTT_PREFIX": "lab",
    }
    got = approval_deployer_from_env(env)
    assert isinstance(got.deployer, MqttDeployer)
    assert got.deployer.password == "s3cret" and got.deployer.mqtt.prefix == "lab"
    assert "WHICHBIN_MQTT_PASSWORD" not in os.environ
    assert "s3cret" not in repr(got.deployer)


@pytest.mark.parametrize("which", ["WHICHBIN_MQTT_PASSWORD_SECRET", "WHICHBIN_SIGNING_SECRET"])
def test_an_unreadable_secret_is_a_one_line_config_error(
    aws: str, signing_key, which: str, monkeypatch
) -> None:
    import boto3

    from whichbin.deploy.sagemaker_events import approval_deployer_from_env
    from whichbin.errors import ConfigError

    monkeypatch.delenv("WHICHBIN_MQTT_PASSWORD", raising=False)
    sm = boto3.client("secretsmanager")
    key = sm.create_secret(Name="approver", SecretString=signing_key[0].read_text())["ARN"]
    env = {"WHICHBIN_MQTT_URL": "mqtt://registry@127.0.0.1:1", "WHICHBIN_SIGNING_SECRET": key}
    env[which] = "no-such-secret"
    with pytest.raises(ConfigError, match="no-such-secret: cannot read it") as e:
        approval_deployer_from_env(env)
    assert "\n" not in str(e.value)


def test_registry_watch_polls_and_deploys_each_new_approval(
    aws: str, color_bundle: Path, broker, prefix: str, signing_key
) -> None:
    from whichbin.cli.main import app

    reg, version, arn = registered(aws, color_bundle)
    uri = f"sagemaker://{GROUP}?bucket={aws}"
    args = ["registry", "watch", "--registry", uri, "--mqtt", broker.url, "--prefix", prefix]
    args += ["--signing-key", str(signing_key[0]), "--once"]
    with fleet_deployments(broker.url, prefix) as payloads:
        first = CliRunner().invoke(app, args)  # nothing approved yet
        assert first.exit_code == 0, first.output
        time.sleep(0.3)
        assert payloads() == []
        set_status(reg, arn, "Approved")
        second = CliRunner().invoke(app, args)
        assert second.exit_code == 0, second.output
        assert wait_for(payloads)
    (payload,) = payloads()
    assert isinstance(payload, dict) and payload["version"] == version.id
    verify(signing_key[1], payload)


def test_watch_deploys_only_when_the_approval_changes() -> None:
    """The polling loop: a change of approval deploys once; a failed poll does not stop it."""
    from whichbin.errors import RegistryError
    from whichbin.registry.base import ModelVersion

    def version(n: int, at: str) -> ModelVersion:
        return ModelVersion(
            id=f"m/{n}", name="m", number=n, sha256="s", artifact="s3://b/k", size_bytes=1,
            gate="passed", created="", approved_at=at,
        )  # fmt: skip

    polls = [None, version(1, "a"), RegistryError("throttled"), version(1, "a"), version(2, "b")]

    class Registry:
        def latest_approved(self, name: str) -> ModelVersion | None:
            item = polls.pop(0)
            if not polls:
                stop.set()
            if isinstance(item, Exception):
                raise item
            return item

    stop = threading.Event()
    deployed: list[str] = []
    watch_approvals(Registry(), "m", lambda v: deployed.append(v.id), interval=0.01, stop=stop)
    assert deployed == ["m/1", "m/2"]


def test_watch_republishes_the_approval_before_its_presigned_url_expires() -> None:
    """With a fake clock: an unchanged approval is republished once 80 % of the URL's
    lifetime has passed since it was last published, and not before."""
    from whichbin.deploy.sagemaker_events import REPUBLISH_AT
    from whichbin.registry.base import ModelVersion

    expires = 3600
    v1 = ModelVersion(
        id="m/1", name="m", number=1, sha256="s", artifact="s3://b/k", size_bytes=1,
        gate="passed", created="", approved_at="a",
    )  # fmt: skip
    times = iter([0, 0, 1000, 2879, 2880, 2880, 3000, 5759, 5760, 5760])
    now = [0.0]

    class Registry:
        def latest_approved(self, name: str) -> ModelVersion:
            now[0] = next(times, None) or now[0]
            if now[0] >= 5760:
                stop.set()
            return v1

    stop = threading.Event()
    deployed: list[float] = []
    watch_approvals(
        Registry(), "m", lambda v: deployed.append(now[0]), interval=0.001, stop=stop,
        republish_after=expires * REPUBLISH_AT, clock=lambda: now[0],
    )  # fmt: skip
    assert deployed == [0, 2880, 5760]


def test_watch_refuses_a_poll_slower_than_the_url_renewal(aws: str) -> None:
    from whichbin.cli.main import app

    args = ["registry", "watch", "--registry", f"sagemaker://{GROUP}?bucket={aws}"]
    args += ["--mqtt", "mqtt://127.0.0.1:1", "--interval", "900", "--url-expires", "3600"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code != 0 and "--interval 900: poll at least every 720s" in done.output


def test_iot_core_deployer_publishes_retained_deployments_and_clears_them() -> None:
    import boto3
    from moto import mock_aws
    from moto.iotdata.models import iotdata_backends

    from whichbin.contract import Deployment
    from whichbin.deploy.sagemaker_events import IotDataDeployer

    dep = Deployment(version="trash-classifier/3", sha256="a" * 64, url="https://x/m.onnx", ts="t")
    with mock_aws():
        deployer = IotDataDeployer(boto3.client("iot-data", region_name="eu-west-1"))
        assert deployer.send(dep) == "whichbin/fleet/deployment"
        assert deployer.clear("kitchen") == "whichbin/kitchen/deployment"
        sent = iotdata_backends["123456789012"]["eu-west-1"].published_payloads
    assert sent[0][0] == "whichbin/fleet/deployment"
    assert Deployment.model_validate_json(sent[0][1]) == dep
    assert sent[1][0] == "whichbin/kitchen/deployment" and not sent[1][1]  # empty: cleared
