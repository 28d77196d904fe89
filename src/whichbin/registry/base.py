"""The model registry's pure core: version records, ids and approval transitions.

No I/O here. Backends (``SqliteRegistry``) load a ``ModelVersion``, apply one of the
transition functions below and store the result, so every backend follows the same rules:

* Only versions whose quality gate passed can be approved.
* Approving an ``Approved`` version again re-stamps who/when and makes it the current
  approval again (latest approval wins). This is how a fleet is rolled back to an older
  model.
* A ``Rejected`` version whose gate passed may be approved later: a human reversing a
  decision. The rejection stays in the event history.
* Any version that is not already ``Rejected`` can be rejected, including an ``Approved``
  one (withdrawing it). ``latest_approved`` then falls back to the previous approval.
* A rollback makes an ``Approved`` version current again, with who and why, like a
  re-approval (``whichbin registry deploy OLD --reason TEXT``).
* A device can be pinned to an approved version; it then ignores fleet approvals until
  it is unpinned. Pins and unpins are audited like approvals.
* Notes, reasons and names are capped (``MAX_NOTE``, ``MAX_ACTOR``): the audit trail is
  for people, not a store for megabytes.
"""

from __future__ import annotations

import builtins
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from whichbin.contract import iso
from whichbin.errors import RegistryError

if TYPE_CHECKING:
    from whichbin.registry.inputs import Registration

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "trash-classifier"
# SageMaker model package group names, so local names port to sagemaker:// unchanged.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,62}$")
HEADLINE_METRICS = ("accuracy", "bin_accuracy", "macro_f1")
MAX_NOTE = 2000  # characters of a note or reason in the audit trail
MAX_ACTOR = 200  # characters of who approved, rejected or pinned
ROLLBACK_NOTE = "rollback: "  # starts the approval note of a rollback
# Version numbers fit SQLite's 64-bit integers (and SageMaker's): more digits name nothing.
_NUMBER = re.compile(r"[0-9]{1,18}")

Gate = Literal["passed", "failed"]


class ApprovalStatus(StrEnum):
    """SageMaker's ``ModelApprovalStatus`` values, verbatim."""

    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


class VersionNotFound(RegistryError):
    """The version id names nothing in this registry."""


class TransitionRefused(RegistryError):
    """The approval/rejection is not allowed in the version's current state."""


class ModelVersion(BaseModel):
    """One registered model version (a SageMaker model package)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description='Semantic id, "trash-classifier/7"')
    name: str = Field(description="Model (package group) name")
    number: int = Field(ge=1, description="Version number within the name, from 1")
    sha256: str = Field(description="sha256 of the artifact bytes")
    artifact: str = Field(description="Path of the registry's copy of model.onnx")
    size_bytes: int = Field(ge=0)
    metrics: dict[str, Any] = Field(default_factory=dict)
    gate: Gate
    reasons: list[str] = Field(default_factory=list, description="Why the gate failed")
    lineage: dict[str, Any] = Field(
        default_factory=dict,
        description="manifest_hash, config_hash, code_version, sources, parent version, ...",
    )
    status: ApprovalStatus = ApprovalStatus.PENDING
    approved_by: str | None = None
    approved_at: str | None = None
    note: str = ""
    rejected_reason: str | None = None
    rejected_by: str | None = None
    rejected_at: str | None = None
    created: str
    report: str | None = Field(default=None, description="Path of the training/evaluation report")


class Pin(BaseModel):
    """A device held on one version: it ignores fleet approvals until unpinned."""

    model_config = ConfigDict(extra="forbid")

    device: str
    version: str = Field(description='The pinned version id, "trash-classifier/7"')
    by: str
    at: str
    reason: str = ""


class RegistryEvent(BaseModel):
    """One entry of the audit trail: who did what to which version, and when."""

    version: str
    action: Literal["register", "approve", "reject", "rollback", "pin", "unpin"]
    by: str
    at: str
    note: str = ""


# A transition applied to a loaded version at a moment: approve, reject or rollback.
Change = Callable[[ModelVersion, datetime], ModelVersion]


def version_id(name: str, number: int) -> str:
    """``trash-classifier/7``."""
    return f"{name}/{number}"


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise RegistryError."""
    if not NAME_PATTERN.match(name):
        raise RegistryError(
            f"model name {name!r} is not valid: use letters, digits and single hyphens "
            "(SageMaker model package group rules), e.g. trash-classifier"
        )
    return name


def parse_version_id(value: str, default_name: str = DEFAULT_MODEL_NAME) -> tuple[str, int]:
    """``"trash-classifier/7"`` → ("trash-classifier", 7); ``"7"`` uses ``default_name``."""
    text = value.strip()
    name, sep, number = text.rpartition("/")
    if not sep:
        name = default_name
    if not _NUMBER.fullmatch(number) or int(number) < 1:
        raise RegistryError(
            f"version {value!r} is not a version id: use NAME/N (e.g. trash-classifier/7) or N"
        )
    return check_name(name), int(number)


def plain_json(value: Any, what: str) -> Any:
    """``value`` as plain JSON types (numpy scalars and arrays included), else RegistryError."""
    import json

    def default(o: Any) -> Any:
        if hasattr(o, "tolist"):  # numpy scalars and arrays, without importing numpy
            return o.tolist()
        if isinstance(o, Path | datetime):
            return str(o)
        raise TypeError(f"{type(o).__name__} is not JSON serializable")

    try:
        return json.loads(json.dumps(value, default=default))
    except (TypeError, ValueError) as e:
        raise RegistryError(f"cannot register: {what} must be plain JSON values ({e})") from e


def headline_metrics(metrics: dict[str, Any]) -> dict[str, float | None]:
    """accuracy, bin_accuracy and macro_f1 from top level or a ``test`` section, if present."""
    sections = [metrics]
    if isinstance(metrics.get("test"), dict):
        sections.append(metrics["test"])
    out: dict[str, float | None] = {}
    for key in HEADLINE_METRICS:
        value = next((s[key] for s in sections if isinstance(s.get(key), int | float)), None)
        out[key] = float(value) if value is not None else None
    return out


def check_text(value: str, field: str, limit: int = MAX_NOTE) -> str:
    """``value`` stripped, or RegistryError naming ``field`` when longer than ``limit``."""
    if len(value) > limit:
        raise RegistryError(
            f"{field}: {len(value)} characters, at most {limit} are kept in the audit trail: "
            "shorten it (link to a longer write-up instead)"
        )
    return value.strip()


def approve_version(version: ModelVersion, by: str, note: str, now: datetime) -> ModelVersion:
    """The version after approval by ``by``; raises TransitionRefused when not allowed."""
    by, note = check_text(by, "by", MAX_ACTOR), check_text(note, "note")
    if not by:
        raise TransitionRefused(f"{version.id}: say who approves it (--by NAME)")
    if version.gate != "passed":
        why = "; ".join(version.reasons) or "no reasons recorded"
        raise TransitionRefused(
            f"{version.id} failed the quality gate ({why}) and cannot be approved: improve the "
            f"data or config and run `whichbin pipeline run` again, or reject it with "
            f"`whichbin registry reject {version.id} --reason TEXT`"
        )
    return version.model_copy(
        update={
            "status": ApprovalStatus.APPROVED,
            "approved_by": by,
            "approved_at": iso(now),
            "note": note,
            "rejected_reason": None,
            "rejected_by": None,
            "rejected_at": None,
        }
    )


def reject_version(version: ModelVersion, reason: str, by: str, now: datetime) -> ModelVersion:
    """The version after rejection; raises TransitionRefused when not allowed."""
    reason, by = check_text(reason, "reason"), check_text(by, "by", MAX_ACTOR)
    if not reason:
        raise TransitionRefused(f"{version.id}: a rejection needs a reason (--reason TEXT)")
    if version.status == ApprovalStatus.REJECTED:
        raise TransitionRefused(
            f"{version.id} is already rejected ({version.rejected_reason or 'no reason'})"
        )
    return version.model_copy(
        update={
            "status": ApprovalStatus.REJECTED,
            "rejected_reason": reason,
            "rejected_by": by or None,
            "rejected_at": iso(now),
        }
    )


def rollback_version(version: ModelVersion, by: str, reason: str, now: datetime) -> ModelVersion:
    """The version made current again by a rollback; only an ``Approved`` one, with a reason."""
    if version.status != ApprovalStatus.APPROVED:
        raise TransitionRefused(
            f"{version.id} is {version.status.value}, not Approved: only an approved version "
            f"can be rolled back to (approve it with `whichbin registry approve {version.id}`)"
        )
    reason = check_text(reason, "reason", MAX_NOTE - len(ROLLBACK_NOTE))
    if not reason:
        raise TransitionRefused(f"{version.id}: a rollback needs a reason (--reason TEXT)")
    return approve_version(version, by, ROLLBACK_NOTE + reason, now)


def new_pin(device: str, version: ModelVersion, by: str, reason: str, now: datetime) -> Pin:
    """A pin of ``device`` on an approved ``version``; raises RegistryError when not allowed."""
    from whichbin.contract import check_device_id

    device = check_device_id(device, "--device")
    by, reason = check_text(by, "by", MAX_ACTOR), check_text(reason, "reason")
    if version.status != ApprovalStatus.APPROVED:
        raise TransitionRefused(
            f"{version.id} is {version.status.value}, not Approved: only approved versions are "
            f"deployed (approve it with `whichbin registry approve {version.id}`)"
        )
    return Pin(device=device, version=version.id, by=by, at=iso(now), reason=reason)


class Registry(ABC):
    """Where model versions live and get approved (local SQLite or SageMaker).

    The steps every backend shares (checking a registration, applying a transition and
    logging it, checking an unpin) are written here once; a backend supplies the storage
    behind ``_register``, ``_change`` and ``_unpin`` and the read methods.
    """

    uri: str
    default_name: str

    def register(
        self,
        name: str,
        artifact: Path,
        metrics: dict,
        gate_passed: bool,
        reasons: builtins.list[str],
        lineage: dict,
        report: Path | None = None,
    ) -> ModelVersion:
        """Store a new version (status PendingManualApproval) and return it."""
        from whichbin.registry.inputs import check_registration

        reg = check_registration(name, artifact, metrics, lineage, report)
        return self._register(reg, "passed" if gate_passed else "failed", list(reasons))

    @abstractmethod
    def _register(self, reg: Registration, gate: Gate, reasons: builtins.list[str]) -> ModelVersion:
        """Store the checked registration ``reg`` as a new version."""

    @abstractmethod
    def _change(
        self, version_id: str, action: str, change: Change, by: str, note: str
    ) -> ModelVersion:
        """Load the version, apply ``change(version, now)``, store it (and audit ``action``)."""

    def _parse(self, vid: str) -> tuple[str, int]:
        return parse_version_id(vid, self.default_name)

    def _not_found(self, name: str, number: int) -> VersionNotFound:
        return VersionNotFound(
            f"{version_id(name, number)}: no such version in {self.uri} "
            "(see `whichbin registry list`)"
        )

    @abstractmethod
    def get(self, version_id: str) -> ModelVersion:
        """The version named ``name/N`` (or ``N`` for the default name)."""

    def approve(self, version_id: str, by: str, note: str = "") -> ModelVersion:
        """Approve; raises TransitionRefused when the gate failed."""
        version = self._change(
            version_id, "approve", lambda v, now: approve_version(v, by, note, now), by, note
        )
        logger.info("approved %s by %s", version.id, version.approved_by)
        return version

    def reject(self, version_id: str, reason: str, by: str = "") -> ModelVersion:
        """Reject (or withdraw an approval)."""
        version = self._change(
            version_id, "reject", lambda v, now: reject_version(v, reason, by, now), by, reason
        )
        logger.info("rejected %s: %s", version.id, reason)
        return version

    def rollback(self, version_id: str, by: str, reason: str) -> ModelVersion:
        """Make an approved version current again (audited with who and why)."""
        version = self._change(
            version_id, "rollback", lambda v, now: rollback_version(v, by, reason, now), by, reason
        )
        logger.info("rolled back to %s by %s: %s", version.id, version.approved_by, reason)
        return version

    @abstractmethod
    def pin(self, device: str, version_id: str, by: str, reason: str = "") -> Pin:
        """Hold ``device`` on an approved version (replacing its pin, if any); audited."""

    def unpin(self, device: str, by: str) -> Pin | None:
        """Remove the device's pin (audited); the removed pin, or None if it had none."""
        from whichbin.contract import check_device_id

        device, by = check_device_id(device, "--device"), check_text(by, "by", MAX_ACTOR)
        pin = self._unpin(device, by)
        if pin is not None:
            logger.info("unpinned %s (was on %s)", device, pin.version)
        return pin

    @abstractmethod
    def _unpin(self, device: str, by: str) -> Pin | None:
        """Remove the checked ``device``'s pin; the removed pin, or None."""

    @abstractmethod
    def pins(self) -> builtins.list[Pin]:
        """Devices held on a version, by device name."""

    @abstractmethod
    def latest_approved(self, name: str) -> ModelVersion | None:
        """The most recently approved version of ``name`` that is still Approved."""

    @abstractmethod
    def artifact_path(self, version_id: str) -> Path:
        """Local path of the version's model.onnx."""

    @abstractmethod
    def history(self, version_id: str) -> builtins.list[RegistryEvent]:
        """Audit trail of the version, oldest first."""

    @abstractmethod
    def list(self, name: str | None = None) -> builtins.list[ModelVersion]:
        """All versions (of ``name``), oldest first."""
