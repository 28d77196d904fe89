"""Approval triggers deployment: the flow shared by ``whichbin registry`` and ``whichbin web``.

The approval is recorded first; publishing comes second and may fail on its own. The
outcome says which of the two happened, so callers never report a failed publish as a
deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from whichbin.contract import Deployment
from whichbin.deploy.publish import Deployer, DeploymentRefused, artifact_url, build_deployment
from whichbin.errors import DeployError
from whichbin.registry.base import ModelVersion, Registry


@dataclass
class DeployOutcome:
    """What happened: the version's record and, if published, the message and topic."""

    version: ModelVersion
    deployment: Deployment | None = None
    topic: str | None = None
    error: str | None = None  # why the deployment was not published

    @property
    def published(self) -> bool:
        return self.topic is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.model_dump(mode="json"),
            "deployment": self.deployment.model_dump(mode="json") if self.deployment else None,
            "published": self.published,
            "topic": self.topic,
            "error": self.error,
        }


def not_published_message(outcome: DeployOutcome, registry_uri: str) -> str:
    """One line for the user: the approval stands, the deployment did not go out."""
    vid = outcome.version.id
    return (
        f"{vid} is approved (recorded in {registry_uri}) but its deployment was NOT published: "
        f"{outcome.error}. Retry with `whichbin registry deploy {vid}` once the broker is "
        "reachable"
    )


def deploy_version(
    registry: Registry,
    version: ModelVersion,
    deployer: Deployer,
    now: datetime,
    base_url: str | None = None,
    device: str | None = None,
) -> DeployOutcome:
    """Publish the deployment of an approved version (to the fleet, or one device).

    The fleet topic only ever carries the registry's current approval, so a fleet
    rollback is an approval (``whichbin registry approve OLD``) rather than a deploy.

    Raises:
        DeploymentRefused: The version is not deployable (nothing was published).
        DeployError: Publishing failed.
    """
    if device is None:
        current = registry.latest_approved(version.name)
        if current is not None and current.id != version.id:
            raise DeploymentRefused(
                f"{version.id} is not the current approved version ({current.id} is): "
                f"to roll the fleet back to it, approve it again "
                f"(`whichbin registry approve {version.id}`), or deploy it to one --device"
            )
    deployment = build_deployment(version, artifact_url(version, base_url), now)
    topic = deployer.send(deployment, device)
    return DeployOutcome(version, deployment, topic)


def approve_and_deploy(
    registry: Registry,
    version_id: str,
    by: str,
    note: str,
    deployer: Deployer | None,
    now: datetime,
    base_url: str | None = None,
) -> DeployOutcome:
    """Approve ``version_id`` and, when a deployer is given, publish its deployment.

    Raises:
        RegistryError: The approval itself was refused (nothing was recorded).
    """
    version = registry.approve(version_id, by=by, note=note)
    if deployer is None:
        return DeployOutcome(version)
    try:
        return deploy_version(registry, version, deployer, now, base_url)
    except DeployError as e:
        return DeployOutcome(version, error=str(e))
