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

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from whichbin.config.base import DeviceId, Section
from whichbin.errors import ConfigError

FULL_FRAME = (0.0, 0.0, 1.0, 1.0)
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the frame


def check_roi(roi: Box) -> Box:
    """Validate ``(x0, y0, x1, y1)`` fractions: inside [0, 1] and not empty."""
    if len(roi) != 4:
        raise ValueError("roi must be four numbers: x0, y0, x1, y1")
    x0, y0, x1, y1 = roi
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise ValueError("roi must satisfy 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
    return roi


class CaptureConfig(Section):
    """The frame source's capture thread (``edge.capture``)."""

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


class PresenceConfig(Section):
    """The change detector (``edge.presence``); defaults suit a fixed camera over a shelf."""

    roi: Box = Field(
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
    def _roi(cls, v: Box) -> Box:
        return check_roi(v)


class DecisionConfig(Section):
    """The vote over an item's frames (``edge.decision``)."""

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
    def _k_of_n(self) -> DecisionConfig:
        if self.agree_frames is not None and self.agree_frames > self.vote_frames:
            raise ValueError("agree_frames must not exceed vote_frames")
        return self


class SnapshotConfig(Section):
    """Decision snapshots on disk: retention and JPEG quality (``edge.snapshots``)."""

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


class HomeAssistantConfig(Section):
    """Home Assistant MQTT discovery (``edge.homeassistant``)."""

    enabled: bool = Field(False, description="Publish Home Assistant MQTT discovery configs")
    discovery_prefix: str = Field("homeassistant", description="HA's discovery prefix")
    device_name: str | None = Field(None, description="Name in HA (default: whichbin <device>)")


class HttpConfig(Section):
    """The MJPEG live view (``edge.http``)."""

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


Scheme = Literal["https", "http", "file"]


def _all_schemes() -> list[Scheme]:
    return ["https", "http", "file"]


class FetchPolicy(Section):
    """Allowed artifact URLs, the size cap and retries (``edge.security.fetch``)."""

    schemes: list[Scheme] = Field(
        default_factory=_all_schemes,
        description="URL schemes allowed at all; http and file are further limited by "
        "http_hosts and file_root",
    )
    https_hosts: list[str] = Field([], description="Hosts https:// may reach; empty: any host")
    http_hosts: list[str] = Field(
        [],
        description="Hosts plain http:// may reach (the registry's `whichbin web` host); "
        "empty: http refused",
    )
    file_root: Path | None = Field(
        None,
        description="file:// URLs only under this directory (e.g. the registry on the same "
        "machine); unset: file refused",
    )
    max_size: int = Field(
        1 << 30,
        ge=1,
        description="Bytes an artifact may have at most, whatever the deployment says; the "
        "signed size caps each download below that",
    )
    timeout: float = Field(30.0, gt=0, description="Socket timeout (s) of an HTTP(S) download")
    retry_initial: float = Field(
        5.0, gt=0, description="Seconds before the first retry of a failed download or check"
    )
    retry_max: float = Field(300.0, gt=0, description="Longest wait between retries (s)")

    @field_validator("https_hosts", "http_hosts")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [h.strip().lower() for h in v if h.strip()]


class EdgeSecurityConfig(Section):
    """Which deployments an edge accepts (``edge.security``)."""

    trusted_keys: list[Path] = Field(
        [],
        description="Public key files (PEM, `whichbin keys show --pem`) whose signed "
        "deployments are accepted; list two while rotating keys. None: every deployment is "
        "refused",
    )
    insecure_accept_unsigned: bool = Field(
        False,
        description="LAB BENCH ONLY: accept deployments without a (verifiable) signature; "
        "anyone who can publish to the broker can then install any model",
    )
    fetch: FetchPolicy = Field(default_factory=FetchPolicy)


class EdgeConfig(Section):
    """Everything ``whichbin edge run`` takes (``edge:`` in the config file)."""

    device_id: DeviceId | None = Field(
        None, description="This device's id in MQTT topics (required)"
    )
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
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    presence: PresenceConfig = Field(default_factory=PresenceConfig)
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig)
    homeassistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    security: EdgeSecurityConfig = Field(default_factory=EdgeSecurityConfig)

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
            ConfigError: naming the missing key and the flag that sets it.
        """
        for key, flag in (("device_id", "--device-id"), ("source", "--source")):
            if not getattr(self, key):
                raise ConfigError(f"edge.{key}: required (set {flag} or edge.{key} in the config)")
        return self
