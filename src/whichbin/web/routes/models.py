"""``/api/models``: list, show, approve (→ deploy), reject, re-deploy and pin versions.

Writes need a login with a role that may do them (``whichbin.web.auth``); the audit
trail records that user. A ``by`` in the body is accepted for old clients and ignored.
Path segments are checked by the registry (a version number too large for it is a 400);
a device id by ``check_device_id`` (``fleet``, ``+``, ``#``, ``a/b`` are a 400).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict

from whichbin.config import Settings
from whichbin.contract import check_device_id, utc_now
from whichbin.deploy.approval import (
    DeployOutcome,
    approve_and_deploy,
    deploy_version,
    not_published_message,
    reject_and_retract,
    signing_key_path,
)
from whichbin.deploy.publish import DeploymentRefused
from whichbin.registry.base import MAX_ACTOR, MAX_NOTE, ModelVersion, VersionNotFound
from whichbin.registry.base import version_id as make_version_id
from whichbin.web.auth import ApproverDep, DeployerUserDep, RejecterDep
from whichbin.web.deps import DeployerDep, RegistryDep, SettingsDep

IGNORED_BY = "Ignored: the audit trail records the logged-in user (kept for old clients)"
# The registry checks note and reason lengths (a 400 with its one-line message, the same
# for the CLI); the schema states the limit so clients can read it.
NOTE_LIMIT: JsonDict = {"maxLength": MAX_NOTE}

router = APIRouter(prefix="/api/models", tags=["models"])


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str | None = Field(default=None, max_length=MAX_ACTOR, description=IGNORED_BY)
    note: str = Field(
        default="", description="Why, for the audit trail", json_schema_extra=NOTE_LIMIT
    )


class RejectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(
        min_length=1, description="Why, for the audit trail", json_schema_extra=NOTE_LIMIT
    )
    by: str | None = Field(default=None, max_length=MAX_ACTOR, description=IGNORED_BY)


class DeployRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: str | None = Field(
        default=None,
        description="Pin this device to the version (whichbin/<device>/deployment)",
    )
    by: str | None = Field(default=None, max_length=MAX_ACTOR, description=IGNORED_BY)
    reason: str = Field(
        default="",
        description="Why; needed to roll the fleet back to a version that is not current",
        json_schema_extra=NOTE_LIMIT,
    )


@router.get("")
def list_models(registry: RegistryDep, name: str | None = None) -> list[ModelVersion]:
    """All versions, oldest first (``?name=`` for one model)."""
    return registry.list(name)


@router.get("/{name}/approved")
def latest_approved(name: str, registry: RegistryDep) -> ModelVersion:
    """The version the fleet should run: the most recent approval still standing."""
    version = registry.latest_approved(name)
    if version is None:
        raise VersionNotFound(f"{name}: no approved version yet")
    return version


@router.get("/{name}/{n}")
def show_model(name: str, n: int, registry: RegistryDep) -> dict[str, Any]:
    """One version with its audit trail under ``history``."""
    vid = make_version_id(name, n)
    doc = registry.get(vid).model_dump(mode="json")
    doc["history"] = [e.model_dump(mode="json") for e in registry.history(vid)]
    return doc


@router.post("/{name}/{n}/approve")
def approve_model(
    name: str,
    n: int,
    user: ApproverDep,
    registry: RegistryDep,
    settings: SettingsDep,
    deployer: DeployerDep,
    body: ApproveRequest | None = None,
) -> JSONResponse:
    """Approve (as the logged-in approver) and publish the deployment.

    401 without a login, 403 for a role that may not approve; 409 when the gate failed,
    or when a rejection won the race and the deployment was retracted; 400 when the
    artifact is damaged; 502 when the approval was recorded but the broker could not be
    reached, 400 when it was recorded but this server has no usable signing key (the body
    says so and holds the version).
    """
    outcome = approve_and_deploy(
        registry,
        make_version_id(name, n),
        user.name,
        body.note if body else "",
        deployer,
        utc_now(),
        **_publishing(settings),
    )
    doc = outcome.to_dict()
    if outcome.error:
        doc["detail"] = not_published_message(outcome, registry.uri)
        return JSONResponse(doc, status_code=_failed_status(outcome))
    if deployer is None:
        doc["detail"] = "approved; deployment publishing is off on this server (no --mqtt)"
    return JSONResponse(doc)


@router.post("/{name}/{n}/reject")
def reject_model(
    name: str,
    n: int,
    body: RejectRequest,
    user: RejecterDep,
    registry: RegistryDep,
    settings: SettingsDep,
    deployer: DeployerDep,
) -> JSONResponse:
    """Reject (or withdraw an approval) as the logged-in user.

    The reply is the version's record, with ``was_live`` (the fleet ran it), ``retracted``
    (the fleet was put back on the current approval, or cleared) and ``warning`` (this
    server publishes nothing: the fleet still runs it). 502 (400: no usable signing key)
    when the rejection was recorded but the retraction could not be published.
    """
    outcome = reject_and_retract(
        registry,
        make_version_id(name, n),
        body.reason,
        user.name,
        deployer,
        utc_now(),
        **_publishing(settings),
    )
    doc = outcome.rejection_dict()
    if outcome.error:
        doc["detail"] = outcome.error
        return JSONResponse(doc, status_code=_failed_status(outcome))
    return JSONResponse(doc)


def _publishing(settings: Settings) -> dict[str, Any]:
    """How this server's deployments are addressed and signed (its ``deploy`` section)."""
    deploy = settings.deploy
    return {"base_url": deploy.artifact_base_url, "signing_key": signing_key_path(deploy)}


def _failed_status(outcome: DeployOutcome) -> int:
    """A recorded change whose deployment did not go out: 409 retracted by a racing
    rejection, 400 no usable signing key on this server, else 502 (the broker)."""
    if outcome.retracted:
        return 409
    return 400 if outcome.unsigned else 502


@router.post("/{name}/{n}/deploy")
def deploy_model(
    name: str,
    n: int,
    user: DeployerUserDep,
    registry: RegistryDep,
    settings: SettingsDep,
    deployer: DeployerDep,
    body: DeployRequest | None = None,
) -> dict[str, Any]:
    """Publish (again) the deployment of an approved version, or pin one device to it,
    as the logged-in user.

    A version other than the current approval goes to the fleet only as a rollback, with
    a ``reason``. 401 without a login, 403 for a role that may not deploy; 400 for a bad
    device id or no usable signing key on this server; 409 when the version is not
    deployable; 502 when the broker could not be reached.
    """
    body = body or DeployRequest()
    if body.device is not None:  # a bad device id is a 400 whatever the server's setup
        check_device_id(body.device, "device")
    version = registry.get(make_version_id(name, n))
    if deployer is None:
        raise DeploymentRefused(
            "deployment publishing is off on this server (start it with --mqtt)"
        )
    outcome = deploy_version(
        registry,
        version,
        deployer,
        utc_now(),
        device=body.device,
        by=user.name,
        reason=body.reason,
        **_publishing(settings),
    )
    return outcome.to_dict()
