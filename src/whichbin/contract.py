"""SPEC interfaces as pydantic models: MQTT topics and payloads.

Every payload carries ``"v": 1`` so consumers can evolve; extra keys are allowed on
input (other programs may add fields) and never removed on output.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from whichbin.errors import ConfigError

# Names shared across packages: defined here once, imported everywhere else.
BINS = ("compost", "landfill", "recycling")
DECIDED = "decided"
UNSURE = "unsure"  # an event's decision, and the state when no bin is confident
IDLE = "idle"  # the state when nothing is in front of the camera
Decision = Literal["decided", "unsure"]
DeploymentState = Literal["downloading", "verifying", "active", "failed", "rolled_back"]
ONLINE = "online"
OFFLINE = "offline"
DEEPLENS_TOPIC = "deeplens/trash/infer"
DeepLensName = Literal["Compost", "Landfill", "Recycling"]
DEEPLENS_NAMES: dict[str, DeepLensName] = {
    "compost": "Compost",
    "landfill": "Landfill",
    "recycling": "Recycling",
}
DEEPLENS_BINS = {name: bin_ for bin_, name in DEEPLENS_NAMES.items()}
COMMANDS = ("pause", "resume", "reload")
FLEET = "fleet"  # the topic level of fleet-wide messages: never a device id
# One topic level: no '/', '+', '#', spaces or control characters; short enough for any broker.
DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def check_device_id(device: str, field: str = "device") -> str:
    """``device`` if it is a valid device id, else ConfigError naming ``field``.

    The one check for every place a device id comes in (edge, CLI, web, registry), so a
    name like ``fleet``, ``+``, ``#`` or ``a/b`` can never turn a device message into a
    fleet-wide or wildcard one.
    """
    if not isinstance(device, str) or not DEVICE_ID.fullmatch(device):
        raise ConfigError(
            f"{field} {str(device)[:80]!r}: not a device id: use 1-64 letters, digits, '_', "
            "'-', '.', ':' (starting with a letter or digit), e.g. bin-1"
        )
    if device.casefold() == FLEET:
        raise ConfigError(f"{field} {device!r}: {FLEET!r} is reserved for the fleet topic")
    return device


def utc_now() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """ISO 8601 UTC with a trailing Z."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_event_id() -> str:
    """A globally unique event id."""
    return uuid.uuid4().hex


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")
    v: int = 1

    def to_json(self) -> str:
        return self.model_dump_json()


class LabelP(BaseModel):
    label: str
    p: float


class ModelRef(BaseModel):
    version: str
    sha256: str


class RulesRef(BaseModel):
    name: str
    version: str


class Event(_Payload):
    id: str = Field(default_factory=new_event_id)
    ts: str
    device: str
    bin: str
    label: str
    confidence: float
    decision: Decision
    top_k: list[LabelP]
    model: ModelRef
    rules: RulesRef


class State(_Payload):
    bin: str  # a bin, IDLE or UNSURE
    since: str


class Deployment(_Payload):
    version: str
    sha256: str
    url: str
    ts: str
    approved_by: str | None = None
    size: int | None = Field(default=None, ge=0)  # bytes; with sha256 covered by the signature
    signature: str | None = None  # base64 Ed25519 over name, version, sha256, size
    key_id: str | None = None  # the approver's key (whichbin.security.signing.key_id)


class DeploymentStatus(_Payload):
    version: str
    state: DeploymentState
    error: str | None = None


class Correction(_Payload):
    event_id: str
    bin: str
    ts: str
    source: str = "joystick"


class DeepLensMessage(BaseModel):
    """The recipe's message, verbatim: no version field, one key."""

    object: DeepLensName


class Topics:
    """Topic names for one device under a prefix."""

    def __init__(self, device: str, prefix: str = "whichbin") -> None:
        self.prefix = prefix
        self.device = device

    def _t(self, *parts: str) -> str:
        return "/".join((self.prefix, self.device, *parts))

    @property
    def availability(self) -> str:
        return self._t("availability")

    @property
    def event(self) -> str:
        return self._t("event")

    @property
    def state(self) -> str:
        return self._t("state")

    @property
    def deployment(self) -> str:
        return self._t("deployment")

    @property
    def deployment_status(self) -> str:
        return self._t("deployment", "status")

    @property
    def correction(self) -> str:
        return self._t("correction")

    def command(self, name: str) -> str:
        return self._t("set", name)

    @property
    def fleet_deployment(self) -> str:
        return fleet_deployment_topic(self.prefix)


def fleet_deployment_topic(prefix: str = "whichbin") -> str:
    """The retained fleet-wide deployment topic."""
    return f"{prefix}/{FLEET}/deployment"
