"""Approval → deployment: build the SPEC deployment message and publish it, retained.

``build_deployment`` and ``artifact_url`` are pure. ``publish_deployment`` is the one
place that talks to the broker, and it only reports success once the broker has
acknowledged the retained message (QoS 1) and keeps it: under MQTT 3.1.1 a broker
acknowledges a publish its ACL denies and drops it, so the deployer reads the retained
message back.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from whichbin.config import MqttConfig
from whichbin.contract import Deployment, Topics, fleet_deployment_topic, iso
from whichbin.errors import DeployError, WhichbinError
from whichbin.registry.base import ApprovalStatus, ModelVersion

if TYPE_CHECKING:
    from whichbin.security.signing import Signer

logger = logging.getLogger(__name__)


class DeploymentRefused(DeployError):
    """The version may not be deployed (not approved, or not the current approval)."""


def artifact_url(version: ModelVersion, base_url: str | None = None) -> str:
    """Where edges download the artifact.

    ``{base}/artifacts/{name}/{N}/model.onnx`` (served by ``whichbin web``) when a base URL
    is given, else a ``file://`` URL of the registry's copy.

    Raises:
        DeploymentRefused: No base URL and the artifact is not a local file (S3).
    """
    if base_url:
        return f"{base_url.rstrip('/')}/artifacts/{version.name}/{version.number}/model.onnx"
    if "://" in version.artifact:  # e.g. s3:// from the SageMaker registry: edges cannot read it
        raise DeploymentRefused(
            f"{version.id}: its artifact is at {version.artifact}, which edges cannot fetch: "
            "serve it with `whichbin web` and pass --artifact-base-url (or "
            "WHICHBIN_ARTIFACT_BASE_URL)"
        )
    return Path(version.artifact).resolve().as_uri()


def deployment_topic(prefix: str = "whichbin", device: str | None = None) -> str:
    """``<prefix>/fleet/deployment``, or ``<prefix>/<device>/deployment`` for one device."""
    return Topics(device, prefix).deployment if device else fleet_deployment_topic(prefix)


def require_approved(version: ModelVersion) -> None:
    """Raises DeploymentRefused unless ``version`` is approved."""
    if version.status != ApprovalStatus.APPROVED:
        raise DeploymentRefused(
            f"{version.id} is {version.status.value}, not Approved: only approved versions are "
            f"deployed (approve it with `whichbin registry approve {version.id}`)"
        )


def build_deployment(
    version: ModelVersion, url: str, now: datetime, signer: Signer | None = None
) -> Deployment:
    """The SPEC deployment payload for an approved version, signed when ``signer`` is given.

    The signature covers name, version, sha256 and size; devices refuse an unsigned one.

    Raises:
        DeploymentRefused: The version is not approved.
    """
    require_approved(version)
    signed = {}
    if signer is not None:
        sig = signer.sign(version.name, version.id, version.sha256, version.size_bytes)
        signed = {"signature": sig.signature, "key_id": sig.key_id}
    return Deployment(
        version=version.id,
        sha256=version.sha256,
        url=url,
        ts=iso(now),
        approved_by=version.approved_by,
        size=version.size_bytes,
        **signed,
    )


def publish_deployment(
    deployment: Deployment | None,
    mqtt: MqttConfig,
    device: str | None = None,
    *,
    timeout: float = 10.0,
    password: str | None = None,
) -> str:
    """Publish ``deployment`` retained with QoS 1, wait for the broker's acknowledgement,
    then read the retained message back (the account must be allowed to read the topic,
    as the ``registry`` account of deploy/mosquitto/acl is).

    Args:
        deployment: The payload (see ``build_deployment``); None clears the retained
            message (an empty payload), so a device falls back to the fleet deployment.
        mqtt: The ``mqtt`` section: the broker, the topic prefix, password and CA bundle.
        device: Publish to ``<prefix>/<device>/deployment`` instead of the fleet topic.
        timeout: Seconds to wait for the connection and for the acknowledgement, each.
        password: The broker password, instead of ``mqtt``'s password file or variable.

    Returns:
        The topic published to.

    Raises:
        DeployError: The broker could not be reached, did not acknowledge the message, or
            did not keep it (the account may not publish deployments).
    """
    from whichbin.messaging.mqtt import create_mqtt_client

    topic = deployment_topic(mqtt.prefix, device)
    what = deployment.version if deployment else f"the clearing of {topic}"
    try:
        client = create_mqtt_client(
            mqtt, f"whichbin-deploy-{uuid.uuid4().hex[:8]}", password=password
        )
    except (WhichbinError, OSError, ValueError) as e:  # bad URL, password file, CA file
        raise DeployError(f"cannot publish {what}: {e}") from e
    where = f"{client.url.host}:{client.url.port}"
    payload = deployment.to_json() if deployment else ""
    try:
        if not client.start(wait=timeout):
            raise DeployError(client.failure(timeout))
        if not client.publish_confirmed(topic, payload, qos=1, retain=True, timeout=timeout):
            raise DeployError(f"the MQTT broker at {where} did not acknowledge {topic}")
        try:
            kept = client.read_retained(topic, timeout)
        except TimeoutError as e:
            raise DeployError(f"the MQTT broker at {where}: {e}") from e
        if (kept or b"") != payload.encode():
            who = f" (user {client.url.username})" if client.url.username else ""
            raise DeployError(
                f"the broker at {where} did not keep the deployment on {topic}{who} (is this "
                "account allowed to publish it? see deploy/mosquitto/acl)"
            )
    finally:
        client.stop()
    logger.info("published %s to %s on %s", what, topic, where)
    return topic


class Deployer(Protocol):
    """Sends a deployment message to the fleet (or one device)."""

    def send(self, deployment: Deployment, device: str | None = None) -> str:
        """Publish; return the topic or raise DeployError."""
        ...

    def clear(self, device: str | None = None) -> str:
        """Remove the retained deployment (of one device); return the topic or raise."""
        ...


@dataclass(frozen=True)
class MqttDeployer:
    """The real ``Deployer``: one short-lived MQTT connection per deployment.

    Args:
        mqtt: The ``mqtt`` section.
        timeout: Seconds to wait for the broker (``deploy.timeout``).
        password: The broker password (e.g. from a secret), instead of ``mqtt``'s
            password file or variable.
    """

    mqtt: MqttConfig
    timeout: float = 10.0
    password: str | None = field(default=None, repr=False)

    def send(self, deployment: Deployment | None, device: str | None = None) -> str:
        return publish_deployment(
            deployment, self.mqtt, device, timeout=self.timeout, password=self.password
        )

    def clear(self, device: str | None = None) -> str:
        return self.send(None, device)
