"""One edge device, wired: MQTT client (availability, last will), the command table and
corrections (``edge/commands.py``), Home Assistant discovery (``edge/homeassistant.py``),
the on-disk outbox, frame source on a capture thread, fixed model or deployment follower
(``edge/follower.py``), snapshots, the live view and the runner. Composition and
lifecycle only. What ``whichbin edge run`` starts, and what a test starts in-process::

    svc = EdgeService(EdgeConfig(source="frames/", device_id="cam1",
                                 models_dir=tmp / "models", data_dir=tmp / "edge"),
                      MqttConfig(url=broker.url)).start()
    ...                      # publish a deployment, watch events
    svc.stop()               # availability "offline" (retained), threads joined
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from whichbin.config import EdgeConfig, MqttConfig
from whichbin.contract import BINS, OFFLINE, ONLINE, Topics, check_device_id, utc_now
from whichbin.edge.capture import ThreadedSource
from whichbin.edge.commands import CommandTable, Corrections, FileModelReloader, edge_commands
from whichbin.edge.decide import Decider
from whichbin.edge.follower import DeploymentFollower
from whichbin.edge.homeassistant import HomeAssistant
from whichbin.edge.output import EdgeOutput
from whichbin.edge.presence import PresenceDetector
from whichbin.edge.runner import ActiveModel, EdgeRunner, ModelProvider, RunStats, StaticModel
from whichbin.edge.sources import FrameSource, create_source
from whichbin.errors import ConfigError
from whichbin.security.guard import DeploymentGuard

logger = logging.getLogger(__name__)

__all__ = ["EdgeService"]


class EdgeService:
    """Builds the edge from its config sections; ``run()`` blocks, ``start()`` runs it on a
    thread.

    Args:
        config: the ``edge`` section (``device_id`` and ``source`` set). Its ``data_dir``
            defaults to a folder; ``data_dir=None`` keeps nothing on disk.
        mqtt: the ``mqtt`` section (default: a broker on 127.0.0.1).
        source: a ready FrameSource instead of ``config.source`` (tests, custom cameras).
        clock: current UTC datetime, passed to the runner.
        classify_all: classify every frame (benchmarks), not only while an item is in view.

    Raises:
        WhichbinError subclasses for a missing or bad device id, source, model or rule pack.
    """

    def __init__(
        self,
        config: EdgeConfig,
        mqtt: MqttConfig | None = None,
        *,
        source: FrameSource | None = None,
        clock: Callable[[], datetime] = utc_now,
        classify_all: bool = False,
    ) -> None:
        from whichbin.messaging.mqtt import create_mqtt_client
        from whichbin.rules import load_rules

        config.require()
        self.device_id = check_device_id(str(config.device_id), "--device-id")
        self.config = config
        self.mqtt = mqtt or MqttConfig()
        self.topics = Topics(self.device_id, self.mqtt.prefix)
        self.rules = load_rules(config.rules) if config.rules else None
        self.client = create_mqtt_client(
            self.mqtt,
            f"whichbin-edge-{self.device_id}",
            will=(self.topics.availability, OFFLINE),
        )
        self.follower: DeploymentFollower | None = None
        self.models: ModelProvider
        reload_model: Callable[[], None]  # the ``reload`` command's model part
        if config.model is not None:
            static = StaticModel(self._load_model(config.model))
            self.models = static
            reload_model = FileModelReloader(static, config.model, self._load_model)
        else:
            self.follower = DeploymentFollower(
                self.device_id,
                config.models_dir,
                self.client,
                prefix=self.mqtt.prefix,
                rules=self.rules,
                clock=clock,
                fallback_default=config.default_model,
                load=self._load_classifier,
                guard=DeploymentGuard.from_settings(config.security),
            )
            self.models = self.follower
            reload_model = self.follower.retry
        self.outbox: Any = None
        self.drainer: Any = None
        self.snapshots: Any = None
        counters_file = None
        if config.data_dir is not None:
            data_dir = Path(config.data_dir)
            counters_file = data_dir / "counters.json"
            try:
                self._open_data_dir(data_dir)
            except (OSError, sqlite3.Error) as e:
                raise ConfigError(f"--data-dir {data_dir}: cannot use it ({e})") from e
        self.source = self._create_source(source)
        self.output = EdgeOutput(
            self.client,
            self.topics,
            event_publisher=self.outbox,
            snapshots=self.snapshots,
            publish_snapshots=config.snapshots.publish and self.snapshots is not None,
            counters_file=counters_file,
            deeplens=config.deeplens_topic,
        )
        self.liveview: Any = None
        if config.http.port is not None:
            from whichbin.edge.liveview import LiveView, load_password

            self.liveview = LiveView(
                config.http.host,
                config.http.port,
                config.http.max_fps,
                password=load_password(config.http.password_file),
            )
        self.runner = EdgeRunner(
            self.source,
            self.models,
            self.output,
            self.device_id,
            prefix=self.mqtt.prefix,
            clock=clock,
            presence=PresenceDetector(config.presence),
            decider=Decider.from_config(config.decision),
            max_frames=config.max_frames,
            on_frame=self.liveview.update if self.liveview is not None else None,
            classify_all=classify_all,
        )
        self.commands = CommandTable(self.topics, edge_commands(self.runner, reload_model))
        self.corrections = Corrections(self.topics, self.snapshots, self._bins)
        self.homeassistant: HomeAssistant | None = None
        if config.homeassistant.enabled:
            self.homeassistant = HomeAssistant(
                self.client,
                self.device_id,
                prefix=self.mqtt.prefix,
                discovery_prefix=config.homeassistant.discovery_prefix,
                device_name=config.homeassistant.device_name,
                snapshots=self.output.publish_snapshots,
            )
        self._thread: threading.Thread | None = None
        self.stats: RunStats | None = None
        self.error: BaseException | None = None

    def _bins(self) -> set[str]:
        """The bins a correction may name: the rule pack's, else the running model's."""
        if self.rules is not None:
            return set(self.rules.bins)
        model = self.models.current()
        return set(model.classifier.label_to_bin.values()) if model else set(BINS)

    def _open_data_dir(self, data_dir: Path) -> None:
        """The outbox and the snapshot store under ``data_dir`` (created when missing)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        if self.config.outbox:
            from whichbin.messaging.outbox import OutboxDrainer, SqliteOutbox

            self.outbox = SqliteOutbox(data_dir / "outbox.sqlite")
            self.drainer = OutboxDrainer(self.outbox, self.client, retry_interval=1.0)
            if pending := self.outbox.pending():
                logger.info("%d events from an earlier run wait to be sent", pending)
        if self.config.snapshots.enabled:
            from whichbin.edge.snapshots import SnapshotStore

            self.snapshots = SnapshotStore(data_dir / "snapshots", self.config.snapshots)

    def _load_classifier(self, path: Path) -> Any:
        from whichbin.inference import OnnxClassifier

        return OnnxClassifier(path, self.rules, threads=self.config.threads)

    def _load_model(self, path: Path) -> ActiveModel:
        return ActiveModel.from_classifier(self._load_classifier(path))

    def _create_source(self, given: FrameSource | None) -> ThreadedSource:
        cfg = self.config
        capture = cfg.capture
        if given is not None:
            raw, reopen = given, None
        else:

            def reopen() -> FrameSource:
                return create_source(
                    str(cfg.source), cfg.fps, loop=not capture.exit_at_end, stills=cfg.stills
                )

            raw = reopen()
        live = bool(getattr(raw, "live", False))
        return ThreadedSource(
            raw,
            drop=live if capture.drop_frames is None else capture.drop_frames,
            # a camera or stream is re-opened; a file re-opened would replay from the start
            reopen=reopen if live else None,
            restart_on_end=live,
            max_backoff=capture.max_backoff,
        )

    # -- lifecycle --------------------------------------------------------------------
    def run(self) -> RunStats:
        """Connect, loop until the source ends / max frames / ``stop()``, then go offline."""
        cfg = self.config
        self.client.on_connect(self._on_connect)
        self.commands.attach(self.client)
        self.corrections.attach(self.client)
        if self.homeassistant is not None:
            self.homeassistant.attach()
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
        if self.liveview is not None:
            self.liveview.start()
        if self.drainer is not None:
            self.drainer.start()
        if not self.client.start(wait=cfg.connect_timeout):
            logger.warning(
                "%s; running and retrying in the background",
                self.client.failure(cfg.connect_timeout),
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
        self.source.join(2.0)
        if self.liveview is not None:
            self.liveview.stop()
        if self.drainer is not None:
            self.drainer.stop()
            if self.client.connected and self.outbox.pending():
                # Events decided just before the stop: a last, bounded attempt.
                self.outbox.flush(self.client, timeout=2.0)
            if left := self.outbox.pending():
                logger.info("%d events stay in the outbox for the next run", left)
        if self.client.connected:
            ok = self.client.publish_confirmed(self.topics.availability, OFFLINE, retain=True)
            if not ok:
                logger.warning("could not confirm availability 'offline'; the last will covers it")
        self.client.stop()
        if self.outbox is not None:
            self.outbox.close()
        logger.info("edge %s stopped", self.device_id)

    # -- MQTT callbacks (network thread) ---------------------------------------------
    def _on_connect(self) -> None:
        self.client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        if self.homeassistant is not None:
            self.homeassistant.publish()
        self.runner.republish_state()
        if self.follower is not None:
            self.follower.republish_status()
        if self.outbox is not None:
            self.outbox.wake()  # send what waited for the broker now, not at the next retry
