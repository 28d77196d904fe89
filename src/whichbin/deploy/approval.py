"""Approval triggers deployment: the flow shared by ``whichbin registry`` and ``whichbin web``.

The approval is recorded first; publishing comes second and may fail on its own. The
outcome says which of the two happened, so callers never report a failed publish as a
deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from whichbin.contract import Deployment
from whichbin.deploy.publish import (
    Deployer,
    DeploymentRefused,
    artifact_url,
    build_deployment,
    require_approved,
)
from whichbin.errors import DeployError
from whichbin.registry.base import ModelVersion, Registry

if TYPE_CHECKING:
    from whichbin.security.signing import Signer


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
    signer: Signer | None = None,
) -> DeployOutcome:
    """Publish the signed deployment of an approved version (to the fleet, or one device).

    ``signer`` defaults to the configured signing key (``deploy.signing_key``).

    The fleet topic only ever carries the registry's current approval, so a fleet
    rollback is an approval (``whichbin registry approve OLD``) rather than a deploy.

    Raises:
        DeploymentRefused: The version is not deployable (nothing was published).
        DeployError: No signing key, or publishing failed.
    """
    require_approved(version)
    if device is None:
        current = registry.latest_approved(version.name)
        if current is not None and current.id != version.id:
            raise DeploymentRefused(
                f"{version.id} is not the current approved version ({current.id} is): "
                f"to roll the fleet back to it, approve it again "
                f"(`whichbin registry approve {version.id}`), or deploy it to one --device"
            )
    url = artifact_url(version, base_url)
    deployment = build_deployment(version, url, now, signer or configured_signer())
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
    signer: Signer | None = None,
) -> DeployOutcome:
    """Approve ``version_id`` and, when a deployer is given, publish its signed deployment.

    Raises:
        RegistryError: The approval itself was refused (nothing was recorded).
    """
    version = registry.approve(version_id, by=by, note=note)
    if deployer is None:
        return DeployOutcome(version)
    try:
        return deploy_version(registry, version, deployer, now, base_url, signer=signer)
    except DeployError as e:
        return DeployOutcome(version, error=str(e))


def configured_signer() -> Signer:
    """The approver's key from ``deploy.signing_key`` (config or environment) or its default.

    Raises:
        DeployError: No usable key (the message says how to create one).
    """
    from whichbin.config import load_settings
    from whichbin.errors import WhichbinError
    from whichbin.security.keys import load_signer

    try:
        path = load_settings().deploy.signing_key
    except WhichbinError as e:
        raise DeployError(str(e)) from e
    return load_signer(path)
