"""The ``edge:`` section of the config: one strict model for ``whichbin edge run``.

Load order (later wins): defaults → YAML (``edge:`` in the config file) → environment
(``WHICHBIN_EDGE__<KEY>``, nested with ``__``: ``WHICHBIN_EDGE__DECISION__TIMEOUT=8``)
→ command-line flags. The broker comes from the ``mqtt:`` section. Example::

    edge:
      device_id: kitchen
      source: "0"                 # camera index, /dev/video0, rtsp://…, file or folder
      data_dir: /var/lib/whichbin/edge
      presence: {roi: [0.2, 0.1, 0.8, 0.9], crop_margin: 0.05}
      decision: {vote_frames: 5, agree_frames: 3, timeout: 10}
      snapshots: {max_count: 500, max_age_days: 7}
      homeassistant: {enabled: true}
      http: {port: 8081}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from whichbin.edge.decide import Decider
from whichbin.edge.presence import FULL_FRAME, PresenceConfig, check_roi
from whichbin.edge.snapshots import SnapshotPolicy
from whichbin.errors import ConfigError, validation_message
from whichbin.security.policy import EdgeSecuritySettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaptureSettings(_Section):
    drop_frames: bool | None = Field(
        None,
        description="Keep only the latest frame when classification is slower than the "
        "source; default: yes for cameras and streams, no for files and folders",
    )
    exit_at_end: bool = Field(
        False, description="Stop when a video file or folder ends (default: replay it)"
    )
    max_backoff: float = Field(
        30.0, gt=0, description="Longest wait (s) between attempts to re-open a dropped source"
    )


class PresenceSettings(_Section):
    roi: tuple[float, float, float, float] = Field(
        FULL_FRAME,
        description="Region of interest x0, y0, x1, y1 as fractions of the frame; presence "
        "is detected inside it (and, with crop off, items are classified inside it)",
    )
    width: int = Field(64, ge=4, description="Width (px) the frame is reduced to for detection")
    learn_frames: int = Field(
        5, ge=1, description="Consecutive still frames averaged into the first background"
    )
    alpha: float = Field(
        0.05, ge=0, le=1, description="Background learning rate while the scene is empty"
    )
    pixel_threshold: float = Field(
        25.0, gt=0, le=255, description="Levels a pixel's colour channel must change by to count"
    )
    changed_fraction: float = Field(
        0.04,
        gt=0,
        lt=1,
        description="Fraction of changed pixels (isolated ones ignored) that means an item",
    )
    still_fraction: float = Field(
        0.05, gt=0, le=1, description="At most this fraction moved since the last frame: still"
    )
    enter_frames: int = Field(
        2, ge=1, description="Consecutive changed, still frames before an item is present"
    )
    exit_frames: int = Field(
        3, ge=1, description="Consecutive background frames before the item is gone"
    )
    absorb_frames: int = Field(
        900,
        ge=0,
        description="A changed scene still for this many frames becomes the background "
        "(a moved bin, an item left behind); 0 = never",
    )
    compensate_lighting: bool = Field(
        True, description="Ignore changes that shift the whole picture alike (lights)"
    )
    crop: bool = Field(
        True,
        description="Classify the item: the changed region, cut out of the full frame with "
        "a margin; off = classify the whole region of interest",
    )
    crop_margin: float = Field(
        0.05,
        ge=0,
        le=2,
        description="Context around the item on each side, as a fraction of its longer side "
        "(bench/edge_drops.py: 0.05 best)",
    )
    crop_square: bool = Field(True, description="Square the item's crop up")
    extra_crop_margins: tuple[float, ...] = Field(
        (),
        description="More crops of the item with these margins; all crops vote (their "
        "probabilities are averaged), at one inference each",
    )
    min_blob: float = Field(
        0.005,
        ge=0,
        lt=1,
        description="Changed blobs smaller than this fraction of the region are noise "
        "(ignored when locating the item)",
    )

    @field_validator("extra_crop_margins")
    @classmethod
    def _margins(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not all(0 <= m <= 2 for m in v):
            raise ValueError("margins must be within [0, 2]")
        return v

    @field_validator("roi")
    @classmethod
    def _roi(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        return check_roi(v)

    def to_presence_config(self) -> PresenceConfig:
        return PresenceConfig(**self.model_dump())


class DecisionSettings(_Section):
    vote_frames: int = Field(5, ge=1, description="N: the window of latest frames that vote")
    agree_frames: int | None = Field(
        None, ge=1, description="K: votes one bin needs in the window (default: a majority)"
    )
    timeout: float = Field(
        10.0, gt=0, description="Seconds without K agreeing frames before the item is unsure"
    )
    threshold: float | None = Field(
        None, ge=0, le=1, description="Unsure below this confidence (default: the rule pack's)"
    )
    top_k: int = Field(3, ge=1, description="Labels listed in an event's top_k")

    @model_validator(mode="after")
    def _k_of_n(self) -> DecisionSettings:
        if self.agree_frames is not None and self.agree_frames > self.vote_frames:
            raise ValueError("agree_frames must not exceed vote_frames")
        return self

    def create_decider(self) -> Decider:
        return Decider(
            vote_frames=self.vote_frames,
            agree_frames=self.agree_frames,
            timeout=self.timeout,
            threshold=self.threshold,
            k=self.top_k,
        )


class SnapshotSettings(_Section):
    enabled: bool = Field(True, description="Save each decision's image under data_dir")
    max_count: int = Field(500, ge=0, description="Decided items' snapshots kept")
    max_age_days: float | None = Field(
        7.0, gt=0, description="Decided items' snapshots older than this are deleted"
    )
    unsure_max_count: int = Field(2000, ge=0, description="Unsure items kept for review")
    unsure_max_age_days: float | None = Field(
        None, gt=0, description="Unsure items older than this are deleted (default: never)"
    )
    quality: int = Field(90, ge=10, le=100, description="JPEG quality")
    publish: bool = Field(
        False, description="Also publish the JPEG (retained) on <prefix>/<device>/snapshot"
    )

    def policy(self) -> SnapshotPolicy:
        return SnapshotPolicy(
            max_count=self.max_count,
            max_age_days=self.max_age_days,
            unsure_max_count=self.unsure_max_count,
            unsure_max_age_days=self.unsure_max_age_days,
            quality=self.quality,
        )


class HomeAssistantSettings(_Section):
    enabled: bool = Field(False, description="Publish Home Assistant MQTT discovery configs")
    discovery_prefix: str = Field("homeassistant", description="HA's discovery prefix")
    device_name: str | None = Field(None, description="Name in HA (default: whichbin <device>)")


class HttpSettings(_Section):
    port: int | None = Field(
        None, ge=0, le=65535, description="Serve the MJPEG live view on this port (off if unset)"
    )
    host: str = Field("0.0.0.0", description="Interface the live view listens on")
    max_fps: float = Field(10.0, gt=0, description="Live view frames per second at most")
    password_file: Path | None = Field(
        None,
        description="File holding the live view's password (HTTP Basic, any user name); "
        "unset: no password",
    )


class EdgeConfig(_Section):
    """Everything ``whichbin edge run`` takes (``edge:`` in the config file)."""

    device_id: str | None = Field(None, description="This device's id in MQTT topics (required)")
    source: str | None = Field(
        None,
        description="Camera index, device path, rtsp:// or http:// stream, video file, or a "
        "folder of images (required)",
    )
    fps: float | None = Field(
        None, gt=0, description="Playback rate of a folder or file; a rate cap for cameras"
    )
    stills: bool = Field(
        False,
        description="The source is a folder of photos, each one item: one event per photo "
        "(classified whole, no presence detection), played once",
    )
    model: Path | None = Field(None, description="Run this bundle instead of following deployments")
    models_dir: Path = Field(
        Path("whichbin-models"), description="Deployed models and current.json"
    )
    default_model: bool = Field(
        False, description="Following deployments: the bundled model until the first one"
    )
    rules: Path | None = Field(None, description="Rule pack YAML overriding the bundle's rules")
    data_dir: Path | None = Field(
        Path("whichbin-edge"),
        description="Outbox, snapshots and counters; unset = keep nothing on disk",
    )
    outbox: bool = Field(
        True, description="Queue events on disk (data_dir/outbox.sqlite) while the broker is away"
    )
    threads: int = Field(
        1,
        ge=0,
        description="ONNX Runtime threads (0 = one per core); 1 leaves the other cores to "
        "capture and MQTT, fastest end to end on 2 cores (bench/edge_fps.py)",
    )
    deeplens_topic: bool = Field(
        False, description='Also publish the recipe\'s {"object": …} on deeplens/trash/infer'
    )
    max_frames: int | None = Field(None, ge=1, description="Stop after this many frames")
    connect_timeout: float = Field(
        5.0, ge=0, description="Seconds to wait for the broker before running anyway"
    )
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    presence: PresenceSettings = Field(default_factory=PresenceSettings)
    decision: DecisionSettings = Field(default_factory=DecisionSettings)
    snapshots: SnapshotSettings = Field(default_factory=SnapshotSettings)
    homeassistant: HomeAssistantSettings = Field(default_factory=HomeAssistantSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    security: EdgeSecuritySettings = Field(default_factory=EdgeSecuritySettings)

    @model_validator(mode="after")
    def _consistent(self) -> EdgeConfig:
        if self.model is not None and self.default_model:
            raise ValueError("default_model only applies when following deployments (no model)")
        if self.snapshots.publish and not self.snapshots.enabled:
            raise ValueError("snapshots.publish needs snapshots.enabled")
        return self

    def require(self) -> EdgeConfig:
        """The config for running: ``device_id`` and ``source`` must be set.

        Raises:
            ValueError: naming the missing key and the flag that sets it.
        """
        for key, flag in (("device_id", "--device-id"), ("source", "--source")):
            if not getattr(self, key):
                raise ValueError(f"edge.{key}: required (set {flag} or edge.{key} in the config)")
        return self


def as_edge_config(section: Any, source: str = "edge") -> EdgeConfig:
    """The ``edge`` section of loaded settings as an EdgeConfig.

    Accepts an EdgeConfig (once ``Settings.edge`` is typed) or the raw mapping
    (``Settings.edge`` as ``dict``).

    Raises:
        ConfigError: one line naming the key, e.g. ``cfg.yaml: edge.decision.timeout: …``.
    """
    if isinstance(section, EdgeConfig):
        return section
    try:
        return EdgeConfig.model_validate(section or {})
    except ValidationError as e:
        raise ConfigError(validation_message(e, source, prefix=("edge",))) from e


@dataclass
class EdgeOptions:
    """Everything ``whichbin edge run`` takes (see its --help for each option).

    ``data_dir`` None keeps nothing on disk (no outbox, snapshots or counters): the
    library default, so tests stay isolated; the CLI and config default to a folder.
    """

    source: str
    device_id: str
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    model: Path | None = None  # fixed model; None follows deployments
    fps: float | None = None
    stills: bool = False  # a folder of photos, one item (one event) each
    deeplens: bool = False
    prefix: str = "whichbin"
    models_dir: Path = Path("whichbin-models")
    max_frames: int | None = None
    exit_at_end: bool = False  # files/folders: stop at the end instead of replaying
    default_model: bool = False  # follow mode: use the bundled model until a deployment
    rules: Path | None = None
    presence: PresenceConfig = field(default_factory=PresenceConfig)
    password_env: str = "WHICHBIN_MQTT_PASSWORD"
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None  # TLS client certificate and key (whichbin certs)
    key_file: str | None = None
    connect_timeout: float = 5.0  # seconds to wait for the broker before running anyway
    keepalive: int = 30
    data_dir: Path | None = None  # outbox.sqlite, snapshots/, counters.json
    outbox: bool = True
    decision: DecisionSettings = field(default_factory=DecisionSettings)
    snapshots: SnapshotSettings = field(default_factory=SnapshotSettings)
    homeassistant: HomeAssistantSettings = field(default_factory=HomeAssistantSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    drop_frames: bool | None = None  # None: drop for cameras/streams, queue for files
    max_backoff: float = 30.0
    threads: int = 1
    classify_all: bool = False  # benchmarks: classify every frame
    security: EdgeSecuritySettings = field(default_factory=EdgeSecuritySettings)

    @classmethod
    def from_config(cls, edge: EdgeConfig, mqtt: Any = None) -> EdgeOptions:
        """Options from the ``edge:`` and ``mqtt:`` config sections (device_id and source set)."""
        try:
            edge.require()
        except ValueError as e:
            raise ConfigError(str(e)) from e
        extra: dict[str, Any] = {}
        if mqtt is not None:
            extra = {
                "mqtt_url": mqtt.url,
                "prefix": mqtt.prefix,
                "password_env": mqtt.password_env,
                "password_file": mqtt.password_file,
                "ca_file": mqtt.ca_file,
                "cert_file": mqtt.cert_file,
                "key_file": mqtt.key_file,
                "keepalive": mqtt.keepalive,
            }
        return cls(
            source=str(edge.source),
            device_id=str(edge.device_id),
            model=edge.model,
            fps=edge.fps,
            stills=edge.stills,
            deeplens=edge.deeplens_topic,
            models_dir=edge.models_dir,
            max_frames=edge.max_frames,
            exit_at_end=edge.capture.exit_at_end,
            default_model=edge.default_model,
            rules=edge.rules,
            presence=edge.presence.to_presence_config(),
            connect_timeout=edge.connect_timeout,
            data_dir=edge.data_dir,
            outbox=edge.outbox,
            decision=edge.decision,
            snapshots=edge.snapshots,
            homeassistant=edge.homeassistant,
            http=edge.http,
            drop_frames=edge.capture.drop_frames,
            max_backoff=edge.capture.max_backoff,
            threads=edge.threads,
            security=edge.security,
            **extra,
        )
