"""Approval triggers deployment: the flow shared by ``whichbin registry`` and ``whichbin web``.

The approval is recorded first; publishing comes second and may fail on its own. The
outcome says which of the two happened, so callers never report a failed publish as a
deployment. Deployments are signed with the approver's key (``deploy.signing_key``).

The fleet topic is kept on the registry's current approval whenever a deployer is given:

* the artifact's sha256 is checked before anything is approved or published;
* after publishing, the registry is asked again: if a rejection (or a newer approval)
  won the race, the deployment is retracted, i.e. the current approval is published
  again, or the retained message cleared when there is none;
* rejecting the live version (:func:`reject_and_retract`) retracts its deployment the
  same way;
* deploying an older approved version to the fleet is a rollback, recorded with who and
  why; deploying to one device pins it, recorded too.

Without a deployer (``--no-deploy``, a web server without ``--mqtt``) only the registry
changes: the fleet keeps its last deployment, and the outcome's ``warning`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whichbin.contract import Deployment, check_device_id
from whichbin.deploy.publish import (
    Deployer,
    DeploymentRefused,
    artifact_url,
    build_deployment,
    require_approved,
)
from whichbin.errors import DeployError, RegistryError, SigningKeyError
from whichbin.registry.base import ModelVersion, Pin, Registry, new_pin

if TYPE_CHECKING:
    from whichbin.config import DeployConfig
    from whichbin.security.signing import Signer


@dataclass
class DeployOutcome:
    """What happened: the version's record and, if published, the message and topic."""

    version: ModelVersion
    deployment: Deployment | None = None
    topic: str | None = None
    error: str | None = None  # why the deployment was not published (or was retracted)
    retracted: bool = False  # the fleet was put back on the current approval (or cleared)
    was_live: bool = False  # a rejection of the version the fleet's deployment carried
    warning: str | None = None  # the fleet still runs a rejected version
    unsigned: bool = False  # ``error`` is a missing or unusable signing key, not the broker
    pin: Pin | None = None  # the device pinned by this deployment
    pinned: list[Pin] = field(default_factory=list)  # devices that do not follow the fleet

    @property
    def published(self) -> bool:
        return self.topic is not None and not self.retracted

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.model_dump(mode="json"),
            "deployment": self.deployment.model_dump(mode="json") if self.deployment else None,
            "published": self.published,
            "topic": self.topic,
            "error": self.error,
            "retracted": self.retracted,
            "was_live": self.was_live,
            "warning": self.warning,
            "pin": self.pin.model_dump(mode="json") if self.pin else None,
            "pinned": [p.model_dump(mode="json") for p in self.pinned],
        }

    def rejection_dict(self) -> dict[str, Any]:
        """A rejection's reply: the version's record, and what happened to the fleet."""
        doc = self.version.model_dump(mode="json")
        doc.update(was_live=self.was_live, retracted=self.retracted, topic=self.topic)
        doc.update(error=self.error, warning=self.warning)
        return doc


def not_published_message(
    outcome: DeployOutcome, registry_uri: str, mqtt_url: str | None = None
) -> str:
    """One line for the user: the approval stands, the deployment did not go out; the
    retry command names the registry and the broker it was given."""
    if outcome.retracted:
        return str(outcome.error)
    vid = outcome.version.id
    retry = f"whichbin registry deploy {vid} --registry {registry_uri}"
    failed = f"{vid} is approved (recorded in {registry_uri}) but its deployment was NOT published"
    if outcome.unsigned:  # the broker was never tried: no broker hint
        return f"{failed}: {outcome.error}. Once the key is in place, run `{retry}`"
    retry += f" --mqtt {mqtt_url}" if mqtt_url else " --mqtt URL"
    return f"{failed}: {outcome.error}. Retry with `{retry}` once the broker is reachable"


def verify_artifact(registry: Registry, version: ModelVersion, refused: str) -> None:
    """Raise RegistryError unless the registry's copy still has the registered sha256.

    ``refused`` says what does not happen then (``approved``, ``published``).
    """
    from whichbin.inference import sha256_file

    path = registry.artifact_path(version.id)  # the SageMaker backend verifies its download
    try:
        actual = sha256_file(path)
    except OSError as e:
        raise RegistryError(f"{version.id}: cannot read its artifact {path} ({e})") from e
    if actual != version.sha256.strip().lower():
        raise RegistryError(
            f"{version.id}: artifact {path} has sha256 {actual[:12]}…, registered "
            f"{version.sha256[:12]}…: the registry's copy is damaged, so it was not {refused} "
            "(register the model again)"
        )


def deploy_version(
    registry: Registry,
    version: ModelVersion,
    deployer: Deployer,
    now: datetime,
    base_url: str | None = None,
    device: str | None = None,
    signer: Signer | None = None,
    *,
    by: str = "",
    reason: str = "",
    signing_key: Path | None = None,
) -> DeployOutcome:
    """Publish the signed deployment of an approved version (to the fleet, or one device).

    To one device: the device is pinned to the version (recorded in the registry) and
    ignores fleet approvals until ``whichbin registry unpin``. To the fleet: the current
    approval is published again; any other approved version needs ``reason`` and becomes
    the current approval (an audited rollback) before it is published. ``signer``
    defaults to the key at ``signing_key`` (the caller's ``deploy.signing_key``), else the
    configured one.

    Raises:
        DeploymentRefused: The version is not deployable (nothing was published).
        ConfigError: A bad device id (nothing was published).
        SigningKeyError: No usable signing key (a ConfigError; nothing was published).
        RegistryError: A bad note or a damaged artifact (nothing was published).
        DeployError: Publishing failed.
    """
    require_approved(version)
    if device is not None:
        check_device_id(device, "device")
        new_pin(device, version, by, reason, now)  # every check before anything is sent
        verify_artifact(registry, version, "published")
        url = artifact_url(version, base_url)
        deployment = build_deployment(version, url, now, signer or configured_signer(signing_key))
        topic = deployer.send(deployment, device)
        pin = registry.pin(device, version.id, by, reason)
        return DeployOutcome(version, deployment, topic, pin=pin)
    current = registry.latest_approved(version.name)
    if current is None or current.id == version.id:
        verify_artifact(registry, version, "published")
        signer = signer or configured_signer(signing_key)
        return _publish_current(registry, version, deployer, now, base_url, signer)
    if not reason.strip():
        raise DeploymentRefused(
            f"{version.id} is not the current approved version ({current.id} is): to roll "
            f"the fleet back to it, say why (`whichbin registry deploy {version.id} --reason "
            f"TEXT`, recorded as a rollback) or approve it again (`whichbin registry approve "
            f"{version.id}`), or deploy it to one --device"
        )
    verify_artifact(registry, version, "rolled back to")
    signer = signer or configured_signer(signing_key)  # before the rollback is recorded
    version = registry.rollback(version.id, by, reason)
    try:
        return _publish_current(registry, version, deployer, now, base_url, signer)
    except DeployError as e:
        raise DeployError(
            f"the rollback to {version.id} is recorded but its deployment was NOT published: "
            f"{e}. Retry with `whichbin registry deploy {version.id}`"
        ) from e


def approve_and_deploy(
    registry: Registry,
    version_id: str,
    by: str,
    note: str,
    deployer: Deployer | None,
    now: datetime,
    base_url: str | None = None,
    signer: Signer | None = None,
    *,
    signing_key: Path | None = None,
) -> DeployOutcome:
    """Approve ``version_id`` and, when a deployer is given, publish its signed deployment.

    Raises:
        RegistryError: The approval itself was refused, or the artifact is damaged
            (nothing was recorded or published).
    """
    verify_artifact(registry, registry.get(version_id), "approved")
    version = registry.approve(version_id, by=by, note=note)
    if deployer is None:
        return DeployOutcome(version)
    try:
        signer = signer or configured_signer(signing_key)
        outcome = _publish_current(registry, version, deployer, now, base_url, signer)
    except SigningKeyError as e:
        outcome = DeployOutcome(version, error=str(e), unsigned=True)
    except DeployError as e:
        outcome = DeployOutcome(version, error=str(e))
    outcome.pinned = [p for p in registry.pins() if p.version.rpartition("/")[0] == version.name]
    return outcome


def _publish_current(
    registry: Registry,
    version: ModelVersion,
    deployer: Deployer,
    now: datetime,
    base_url: str | None,
    signer: Signer,
) -> DeployOutcome:
    """Publish to the fleet, then check the version is still the current approval."""
    deployment = build_deployment(version, artifact_url(version, base_url), now, signer)
    topic = deployer.send(deployment)
    current = registry.latest_approved(version.name)
    if current is not None and current.id == version.id:
        return DeployOutcome(version, deployment, topic)
    # Rejected (or superseded) while the message was on its way: put the fleet back on
    # what the registry says, so a rejected version is never left deployed.
    version = registry.get(version.id)
    lost = f"{version.id} was {version.status.value} while its deployment was being published"
    try:
        back, topic = _put_fleet_back(registry, version.name, deployer, now, base_url, signer)
    except DeployError as e:
        raise DeployError(
            f"{lost}, and retracting it failed ({e}): devices may still fetch it; run "
            "`whichbin registry deploy` once the broker is reachable"
        ) from e
    done = fleet_now(back)
    return DeployOutcome(version, back, topic, error=f"{lost}: retracted, {done}", retracted=True)


def _put_fleet_back(
    registry: Registry,
    name: str,
    deployer: Deployer,
    now: datetime,
    base_url: str | None,
    signer: Signer | None,
    signing_key: Path | None = None,
) -> tuple[Deployment | None, str]:
    """Publish the current approval of ``name`` to the fleet, or clear the fleet's retained
    deployment when there is none: the deployment (None when cleared) and the topic."""
    current = registry.latest_approved(name)
    if current is None:
        return None, deployer.clear()
    signer = signer or configured_signer(signing_key)
    back = build_deployment(current, artifact_url(current, base_url), now, signer)
    return back, deployer.send(back)


def fleet_now(back: Deployment | None) -> str:
    """What the fleet runs after a retraction that published ``back`` (None: cleared)."""
    if back is None:
        return "the fleet deployment was cleared (no approved version left)"
    return f"the fleet is back on {back.version}"


def reject_and_retract(
    registry: Registry,
    version_id: str,
    reason: str,
    by: str,
    deployer: Deployer | None,
    now: datetime,
    *,
    base_url: str | None = None,
    signing_key: Path | None = None,
) -> DeployOutcome:
    """Reject ``version_id``; when it was the live version (the current approval, which
    the fleet's retained deployment carries) and a deployer is given, put the fleet back on
    the now-current approval, or clear its deployment when none is left.

    The rejection is recorded first. ``was_live`` says whether the fleet ran the version;
    ``retracted`` whether it was put back; ``warning`` (no deployer) or ``error`` (the
    broker failed) says the fleet still runs it, and how to fix that.

    Raises:
        RegistryError: The rejection itself was refused (nothing was recorded).
    """
    name = registry.get(version_id).name
    live = registry.latest_approved(name)
    version = registry.reject(version_id, reason=reason, by=by)
    if live is None or live.id != version.id:
        return DeployOutcome(version)
    current = registry.latest_approved(name)
    still = f"{version.id} was the current deployment and devices still run it; " + (
        f"roll back with `whichbin registry deploy {current.id}`"
        if current
        else "approve another version to replace it"
    )
    if deployer is None:
        return DeployOutcome(version, was_live=True, warning=still)
    try:
        back, topic = _put_fleet_back(registry, name, deployer, now, base_url, None, signing_key)
    except (DeployError, SigningKeyError) as e:
        error = f"{version.id} is rejected but its fleet deployment was NOT retracted ({e})"
        unsigned = isinstance(e, SigningKeyError)
        return DeployOutcome(version, was_live=True, error=f"{error}: {still}", unsigned=unsigned)
    return DeployOutcome(version, back, topic, retracted=True, was_live=True)


def signing_key_path(cfg: DeployConfig) -> Path | None:
    """The approver's key the loaded ``deploy`` section names (config file, environment),
    if any: what ``whichbin registry`` and ``whichbin web`` pass as ``signing_key``."""
    return Path(cfg.signing_key).expanduser() if cfg.signing_key else None


def configured_signer(path: str | Path | None = None) -> Signer:
    """The approver's key at ``path`` (the caller's loaded ``deploy.signing_key``), else
    from ``deploy.signing_key`` (environment) or its default.

    Raises:
        SigningKeyError: No usable key (the message says how to create one).
    """
    from whichbin.config import load_settings
    from whichbin.errors import WhichbinError
    from whichbin.security.keys import load_signer

    if path is None:
        try:
            path = load_settings().deploy.signing_key
        except WhichbinError as e:
            raise SigningKeyError(str(e)) from e
    return load_signer(path)
