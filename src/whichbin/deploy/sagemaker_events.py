"""SageMaker approval → fleet deployment: the EventBridge handler (an AWS Lambda function)
and the polling watcher (``whichbin registry watch --registry sagemaker://GROUP``).

An approval in the SageMaker Model Registry (console, API, or ``whichbin registry approve``)
emits ``SageMaker Model Package State Change``. The handler reads that version from the
``sagemaker://`` registry, presigns an HTTPS URL to its artifact in S3, signs the deployment
with the approver key held in AWS Secrets Manager, and publishes the SPEC fleet deployment
message (retained, QoS 1) to the fleet's MQTT broker or to AWS IoT Core's data endpoint.
Edge devices need nothing new: they fetch https URLs and verify sha256 and signature.

Lambda environment: ``WHICHBIN_MQTT_URL`` (``mqtts://user@host:8883``, password from
``WHICHBIN_MQTT_PASSWORD``) or ``WHICHBIN_IOT_ENDPOINT`` (IoT Core data endpoint);
``WHICHBIN_MQTT_PASSWORD_SECRET`` (Secrets Manager id of the broker password);
``WHICHBIN_SIGNING_SECRET`` (Secrets Manager id of the approver's private key PEM);
``WHICHBIN_MQTT_PREFIX`` (default ``whichbin``); ``WHICHBIN_MODEL_PACKAGE_GROUP`` (the
group whose approvals deploy, default ``trash-classifier``); ``WHICHBIN_URL_EXPIRES``
(seconds, default 43200: a presigned URL lives at most as long as the credentials that
signed it).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from whichbin.config import MqttConfig
from whichbin.contract import Deployment, utc_now
from whichbin.deploy.publish import Deployer, MqttDeployer, build_deployment, deployment_topic
from whichbin.errors import ConfigError, DeployError, WhichbinError
from whichbin.registry.base import ApprovalStatus, ModelVersion
from whichbin.security.signing import Signer

logger = logging.getLogger(__name__)

DETAIL_TYPE = "SageMaker Model Package State Change"
DEFAULT_URL_EXPIRES = 12 * 3600
DEFAULT_GROUP = "trash-classifier"
REPUBLISH_AT = 0.8  # `registry watch` republishes once this share of a URL's lifetime passed


def approved_package(event: Mapping[str, Any], group: str | None = None) -> str | None:
    """The model package ARN when ``event`` approves a package (of ``group``), else None."""
    if event.get("detail-type") != DETAIL_TYPE:
        return None
    detail = event.get("detail") or {}
    if detail.get("ModelApprovalStatus") != ApprovalStatus.APPROVED.value:
        return None
    if group and detail.get("ModelPackageGroupName") != group:
        return None
    arn = detail.get("ModelPackageArn")
    return str(arn) if arn else None


def presigned_url(s3: Any, artifact: str, expires: int) -> str:
    """A time-limited HTTPS URL to an ``s3://`` artifact."""
    parsed = urlparse(artifact)
    if parsed.scheme != "s3":
        raise DeployError(f"{artifact}: not an s3:// artifact; cannot presign it")
    return str(
        s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": parsed.netloc, "Key": parsed.path.lstrip("/")},
            ExpiresIn=expires,
        )
    )


def read_secret(secret_id: str, secrets: Any, what: str) -> str | bytes:
    """A Secrets Manager secret's value; an AWS failure is a one-line ConfigError."""
    try:
        value = secrets.get_secret_value(SecretId=secret_id)
    except Exception as e:  # botocore's ClientError and friends: one line, no traceback
        raise ConfigError(f"{what} secret {secret_id}: cannot read it: {e}") from e
    return value.get("SecretString") or value.get("SecretBinary") or b""


def signer_from_secret(secret_id: str, secrets: Any) -> Signer:
    """The approver's Signer from a Secrets Manager secret holding the private key PEM."""
    pem = read_secret(secret_id, secrets, "signing key")
    return Signer.from_pem(pem.encode() if isinstance(pem, str) else bytes(pem))


@dataclass(frozen=True)
class IotDataDeployer:
    """A ``Deployer`` publishing through AWS IoT Core's data endpoint (retained, QoS 1)."""

    client: Any  # boto3 "iot-data" client for the account's data endpoint
    prefix: str = "whichbin"

    def send(self, deployment: Deployment | None, device: str | None = None) -> str:
        """Publish ``deployment`` retained; ``None`` clears the retained message."""
        topic = deployment_topic(self.prefix, device)
        payload = deployment.to_json().encode() if deployment is not None else b""
        try:
            self.client.publish(topic=topic, qos=1, retain=True, payload=payload)
        except Exception as e:  # botocore errors: reported as a failed deployment
            raise DeployError(f"AWS IoT Core did not accept {topic}: {e}") from e
        return topic

    def clear(self, device: str | None = None) -> str:
        return self.send(None, device)


@dataclass
class ApprovalDeployer:
    """Approved version → presigned URL → signed deployment → fleet topic."""

    s3: Any
    deployer: Deployer
    signer: Signer
    expires: int = DEFAULT_URL_EXPIRES
    clock: Callable[[], datetime] = utc_now

    def deploy(self, version: ModelVersion) -> tuple[Deployment, str]:
        """Publish ``version``'s deployment; returns it and the topic."""
        url = presigned_url(self.s3, version.artifact, self.expires)
        deployment = build_deployment(version, url, self.clock(), self.signer)
        topic = self.deployer.send(deployment)
        logger.info("deployed %s (sha256 %s) to %s", version.id, version.sha256[:12], topic)
        return deployment, topic


def handle_event(
    event: Mapping[str, Any], registry: Any, deploy: ApprovalDeployer, group: str | None = None
) -> dict:
    """One EventBridge event: deploy the version it approves when that version is still the
    group's current approval, or do nothing.

    EventBridge retries and delivers out of order, so the event only says *something changed*:
    the registry's current approval is what is deployed. An event for an older (or since
    rejected) version, or for another model package group, publishes nothing and is not an
    error (an error would only make EventBridge retry it).
    """
    detail = event.get("detail") or {}
    event_group = detail.get("ModelPackageGroupName")
    if group and event_group != group:
        logger.info("ignored: an event of model package group %s, not %s", event_group, group)
        return {"published": False, "reason": f"model package group {event_group}, not {group}"}
    arn = approved_package(event, group)
    if arn is None:
        status = detail.get("ModelApprovalStatus")
        logger.info("ignored: %s %s", event.get("detail-type"), status)
        return {"published": False, "reason": f"not an approval ({status})"}
    version = registry.describe_arn(arn)
    current = registry.latest_approved(version.name)
    if current is None or current.id != version.id:
        now = current.id if current else "none"
        logger.info(
            "ignored: %s is not the current approval of %s (%s)", version.id, version.name, now
        )
        return {
            "published": False,
            "version": version.id,
            "reason": f"not the current approval (current: {now})",
        }
    deployment, topic = deploy.deploy(current)
    return {"published": True, "version": current.id, "topic": topic, "sha256": deployment.sha256}


def watch_approvals(
    registry: Any,
    group: str,
    deploy: Callable[[ModelVersion], Any],
    interval: float = 60.0,
    stop: threading.Event | None = None,
    once: bool = False,
    republish_after: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll ``registry`` and deploy its current approval whenever it changes (first poll
    included: devices ignore a deployment of the model they already run).

    ``republish_after`` (seconds): deploy the unchanged approval again once this long has
    passed since its last deployment, so the retained message's presigned URL is replaced
    before it expires (a device that connects later would otherwise get a dead URL).
    """
    stop = stop or threading.Event()
    last: tuple[str, str | None] | None = None
    published_at = 0.0
    while True:
        try:
            current = registry.latest_approved(group)
            key = (current.id, current.approved_at) if current else None
            stale = (
                republish_after is not None
                and last is not None
                and clock() - published_at >= republish_after
            )
            if current is not None and (key != last or stale):
                if key == last:
                    logger.info("republishing %s: its presigned URL expires soon", current.id)
                deploy(current)
                last, published_at = key, clock()
        except WhichbinError:
            logger.exception("watch %s: poll failed; retrying in %gs", group, interval)
        if once or stop.wait(interval):
            return


def aws_client(service: str, **kwargs: Any) -> Any:
    """A boto3 client; a missing region or bad setting is a one-line ConfigError."""
    import boto3

    try:
        return boto3.client(service, **kwargs)  # type: ignore[call-overload]
    except Exception as e:  # botocore's NoRegionError and friends
        raise ConfigError(f"AWS {service} client: {e}") from e


def approval_deployer_from_env(env: Mapping[str, str] | None = None) -> ApprovalDeployer:
    """The Lambda's ApprovalDeployer from ``env`` (default: the process environment; see
    the module docstring). The broker password goes to the deployer, never into os.environ."""
    env = os.environ if env is None else env
    prefix = env.get("WHICHBIN_MQTT_PREFIX", "whichbin")
    deployer: Deployer
    if env.get("WHICHBIN_IOT_ENDPOINT"):
        endpoint = env["WHICHBIN_IOT_ENDPOINT"]
        url = endpoint if endpoint.startswith("https://") else f"https://{endpoint}"
        deployer = IotDataDeployer(aws_client("iot-data", endpoint_url=url), prefix)
    elif env.get("WHICHBIN_MQTT_URL"):
        password = env.get("WHICHBIN_MQTT_PASSWORD")
        secret_id = env.get("WHICHBIN_MQTT_PASSWORD_SECRET")
        if password is None and secret_id:
            value = read_secret(secret_id, aws_client("secretsmanager"), "MQTT password")
            password = value if isinstance(value, str) else bytes(value).decode()
        mqtt = MqttConfig(url=env["WHICHBIN_MQTT_URL"], prefix=prefix)
        deployer = MqttDeployer(mqtt, password=password)
    else:
        raise ConfigError("set WHICHBIN_MQTT_URL or WHICHBIN_IOT_ENDPOINT: where to publish")
    secret = env.get("WHICHBIN_SIGNING_SECRET")
    if not secret:
        raise ConfigError("set WHICHBIN_SIGNING_SECRET: devices refuse unsigned deployments")
    signer = signer_from_secret(secret, aws_client("secretsmanager"))
    try:
        expires = int(env.get("WHICHBIN_URL_EXPIRES", DEFAULT_URL_EXPIRES))
    except ValueError as e:
        raise ConfigError(f"WHICHBIN_URL_EXPIRES: {e}") from e
    return ApprovalDeployer(aws_client("s3"), deployer, signer, expires)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """AWS Lambda entry point: ``whichbin.deploy.sagemaker_events.handler``.

    Deploys only approvals in ``WHICHBIN_MODEL_PACKAGE_GROUP`` (default ``trash-classifier``).
    """
    from whichbin.registry.sagemaker import SagemakerRegistry

    group = os.environ.get("WHICHBIN_MODEL_PACKAGE_GROUP") or DEFAULT_GROUP
    registry = SagemakerRegistry(group, bucket=os.environ.get("WHICHBIN_SAGEMAKER_BUCKET", "-"))
    result = handle_event(event, registry, approval_deployer_from_env(), group)
    logger.info("result: %s", result)
    return result
