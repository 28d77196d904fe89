"""One edge device, wired: MQTT client (availability, last will, commands), frame source,
fixed model or deployment follower, and the runner. What ``whichbin edge run`` starts,
and what a test starts in-process::

    svc = EdgeService(EdgeOptions(source="frames/", device_id="cam1",
                                  mqtt_url=broker.url, models_dir=tmp / "models")).start()
    ...                      # publish a deployment, watch events
    svc.stop()               # availability "offline" (retained), threads joined
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from whichbin.contract import OFFLINE, ONLINE, Topics, utc_now
from whichbin.edge.decide import Decider
from whichbin.edge.follower import DeploymentFollower
from whichbin.edge.presence import PresenceConfig, PresenceDetector
from whichbin.edge.runner import ActiveModel, EdgeRunner, ModelProvider, RunStats, StaticModel
from whichbin.edge.sources import FrameSource, create_source
from whichbin.errors import ConfigError

logger = logging.getLogger(__name__)

_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


@dataclass
class EdgeOptions:
    """Everything ``whichbin edge run`` takes (see its --help for each option)."""

    source: str
    device_id: str
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    model: Path | None = None  # fixed model; None follows deployments
    fps: float | None = None
    deeplens: bool = False
    prefix: str = "whichbin"
    models_dir: Path = Path("whichbin-models")
    max_frames: int | None = None
    exit_at_end: bool = False  # files/folders: stop at the end instead of replaying
    default_model: bool = False  # follow mode: use the bundled model until a deployment
    rules: Path | None = None
    vote_frames: int = 5
    presence: PresenceConfig = field(default_factory=PresenceConfig)
    password_env: str = "WHICHBIN_MQTT_PASSWORD"
    password_file: str | None = None
    ca_file: str | None = None
    connect_timeout: float = 5.0  # seconds to wait for the broker before running anyway


class EdgeService:
    """Builds the edge from options; ``run()`` blocks, ``start()`` runs it on a thread.

    Args:
        options: what to run.
        source: a ready FrameSource instead of ``options.source`` (tests, custom cameras).
        clock: current UTC datetime, passed to the runner.

    Raises:
        WhichbinError subclasses for a bad device id, source, model or rule pack.
    """

    def __init__(
        self,
        options: EdgeOptions,
        *,
        source: FrameSource | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        from whichbin.messaging.mqtt import create_mqtt_client
        from whichbin.rules import load_rules

        if not _DEVICE_ID.fullmatch(options.device_id):
            raise ConfigError(
                f"--device-id {options.device_id!r}: use letters, digits, '_', '-', '.', ':'"
            )
        self.options = options
        self.topics = Topics(options.device_id, options.prefix)
        rules = load_rules(options.rules) if options.rules else None
        self.client = create_mqtt_client(
            options.mqtt_url,
            client_id=f"whichbin-edge-{options.device_id}",
            will=(self.topics.availability, OFFLINE),
            password_env=options.password_env,
            password_file=options.password_file,
            ca_file=options.ca_file,
        )
        self.follower: DeploymentFollower | None = None
        models: ModelProvider
        if options.model is not None:
            from whichbin.edge.classifier import OnnxClassifier

            models = StaticModel(ActiveModel.from_classifier(OnnxClassifier(options.model, rules)))
        else:
            self.follower = DeploymentFollower(
                options.device_id,
                options.models_dir,
                self.client,
                prefix=options.prefix,
                rules=rules,
                clock=clock,
                fallback_default=options.default_model,
            )
            models = self.follower
        self.source = source or create_source(
            options.source, options.fps, loop=not options.exit_at_end
        )
        self.runner = EdgeRunner(
            self.source,
            models,
            self.client,
            options.device_id,
            prefix=options.prefix,
            clock=clock,
            presence=PresenceDetector(options.presence),
            decider=Decider(vote_frames=options.vote_frames),
            deeplens=options.deeplens,
            max_frames=options.max_frames,
        )
        self._thread: threading.Thread | None = None
        self.stats: RunStats | None = None
        self.error: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------------
    def run(self) -> RunStats:
        """Connect, loop until the source ends / max frames / ``stop()``, then go offline."""
        opts = self.options
        self.client.on_connect(self._on_connect)
        for command, handler in (
            ("pause", self._pause),
            ("resume", self._resume),
            ("reload", self._reload),
        ):
            self.client.subscribe(self.topics.command(command), handler)
        if self.follower is not None:
            model = self.follower.restore()
            self.follower.attach(self.client)
            self.follower.start()
            if model is None:
                logger.info(
                    "no model yet: waiting for a deployment on %s or %s",
                    self.topics.fleet_deployment,
                    self.topics.deployment,
                )
        if not self.client.start(wait=opts.connect_timeout):
            logger.warning(
                "MQTT broker %s not reachable yet; running and retrying in the background",
                opts.mqtt_url,
            )
        try:
            self.stats = self.runner.run()
        finally:
            self._shutdown()
        return self.stats

    def start(self) -> EdgeService:
        """Run on a background thread (tests, embedding); ``stop()`` ends it."""

        def target() -> None:
            try:
                self.run()
            except BaseException as e:  # surfaced to the caller by join()
                logger.exception("edge stopped with an error")
                self.error = e

        self._thread = threading.Thread(target=target, name="whichbin-edge", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> RunStats | None:
        """Stop the loop (thread-safe, also from a signal handler) and wait for it."""
        self.runner.stop()
        return self.join(timeout)

    def join(self, timeout: float | None = None) -> RunStats | None:
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.stats

    def _shutdown(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        self.source.close()
        if self.client.connected:
            ok = self.client.publish_confirmed(self.topics.availability, OFFLINE, retain=True)
            if not ok:
                logger.warning("could not confirm availability 'offline'; the last will covers it")
        self.client.stop()
        logger.info("edge %s stopped", self.options.device_id)

    # -- MQTT callbacks (network thread) ---------------------------------------------
    def _on_connect(self) -> None:
        self.client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        self.runner.republish_state()
        if self.follower is not None:
            self.follower.republish_status()

    def _pause(self, topic: str, payload: bytes) -> None:
        logger.info("paused by %s", topic)
        self.runner.pause()

    def _resume(self, topic: str, payload: bytes) -> None:
        logger.info("resumed by %s", topic)
        self.runner.resume()

    def _reload(self, topic: str, payload: bytes) -> None:
        if self.follower is None:
            logger.info("reload ignored: this edge runs a fixed --model")
            return
        logger.info("reload requested by %s: re-applying the wanted deployment", topic)
        self.follower.retry()
