"""One edge device, wired: MQTT client (availability, last will, commands, corrections,
Home Assistant discovery), the on-disk outbox, frame source on a capture thread, fixed
model or deployment follower, snapshots, the live view and the runner. What ``whichbin
edge run`` starts, and what a test starts in-process::

    svc = EdgeService(EdgeConfig(source="frames/", device_id="cam1",
                                 models_dir=tmp / "models", data_dir=tmp / "edge"),
                      MqttConfig(url=broker.url)).start()
    ...                      # publish a deployment, watch events
    svc.stop()               # availability "offline" (retained), threads joined
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from whichbin import __version__
from whichbin.config import EdgeConfig, MqttConfig
from whichbin.contract import OFFLINE, ONLINE, Correction, Topics, utc_now
from whichbin.edge.capture import ThreadedSource
from whichbin.edge.decide import Decider
from whichbin.edge.follower import DeploymentFollower
from whichbin.edge.homeassistant import birth_topic, discovery_messages, removal_topics
from whichbin.edge.output import EdgeOutput
from whichbin.edge.presence import PresenceDetector
from whichbin.edge.runner import ActiveModel, EdgeRunner, ModelProvider, RunStats, StaticModel
from whichbin.edge.sources import FrameSource, create_source
from whichbin.errors import ConfigError, validation_message

logger = logging.getLogger(__name__)

__all__ = ["EdgeService", "uninstall_home_assistant"]

_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


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
        self.device_id = str(config.device_id)
        if not _DEVICE_ID.fullmatch(self.device_id):
            raise ConfigError(
                f"--device-id {self.device_id!r}: use letters, digits, '_', '-', '.', ':'"
            )
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
        if config.model is not None:
            self.models = StaticModel(self._load_model(config.model))
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
            )
            self.models = self.follower
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
        self._thread: threading.Thread | None = None
        self.stats: RunStats | None = None
        self.error: BaseException | None = None

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
        for command, handler in (
            ("pause", self._pause),
            ("resume", self._resume),
            ("reload", self._reload),
        ):
            self.client.subscribe(self.topics.command(command), handler)
        self.client.subscribe(self.topics.correction, self._correction)
        if cfg.homeassistant.enabled:
            self.client.subscribe(birth_topic(cfg.homeassistant.discovery_prefix), self._ha_birth)
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
                "MQTT broker %s not reachable yet; running and retrying in the background",
                self.mqtt.url,
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
        if self.config.homeassistant.enabled:
            self.publish_discovery()
        self.runner.republish_state()
        if self.follower is not None:
            self.follower.republish_status()
        if self.outbox is not None:
            self.outbox.wake()  # send what waited for the broker now, not at the next retry

    def publish_discovery(self) -> int:
        """Publish the retained Home Assistant discovery configs; returns how many."""
        ha = self.config.homeassistant
        messages = discovery_messages(
            self.device_id,
            prefix=self.mqtt.prefix,
            discovery_prefix=ha.discovery_prefix,
            sw_version=__version__,
            device_name=ha.device_name,
            snapshots=self.output.publish_snapshots,
        )
        sent = sum(
            bool(self.client.publish(m.topic, json.dumps(m.payload), qos=1, retain=True))
            for m in messages
        )
        logger.info("Home Assistant discovery: %d configs published", sent)
        return sent

    def _ha_birth(self, topic: str, payload: bytes) -> None:
        if payload.strip() == b"online":  # HA restarted: it asks for the configs again
            self.publish_discovery()

    def _pause(self, topic: str, payload: bytes) -> None:
        logger.info("paused by %s", topic)
        self.runner.pause()

    def _resume(self, topic: str, payload: bytes) -> None:
        logger.info("resumed by %s", topic)
        self.runner.resume()

    def _reload(self, topic: str, payload: bytes) -> None:
        """``reload``: re-apply the model; ``{"background": true}`` also re-learns the scene."""
        options: dict[str, Any] = {}
        if payload.strip():
            try:
                parsed = json.loads(payload)
                options = parsed if isinstance(parsed, dict) else {}
            except ValueError:
                logger.warning("reload: payload is not JSON; reloading the model only")
        if options.get("background"):
            self.runner.relearn()
        if options.get("model", True) is False:
            return
        if self.follower is not None:
            logger.info("reload requested by %s: re-applying the wanted deployment", topic)
            self.follower.retry()
        elif self.config.model is not None:
            threading.Thread(
                target=self._reload_static, name="whichbin-reload", daemon=True
            ).start()

    def _reload_static(self) -> None:
        assert isinstance(self.models, StaticModel) and self.config.model is not None
        try:
            model = self._load_model(self.config.model)
        except Exception as e:
            logger.error(
                "reload: cannot load %s (%s); keeping the current model", self.config.model, e
            )
            return
        if model.sha256 != self.models.model.sha256:
            self.models.replace(model)
            logger.info("reload: now running %s (%s)", model.version, model.sha256[:12])
        else:
            logger.info("reload: %s is unchanged", self.config.model)

    def _correction(self, topic: str, payload: bytes) -> None:
        try:
            correction = Correction.model_validate_json(payload)
        except ValidationError as e:
            logger.error("ignoring correction on %s", validation_message(e, topic, top="payload"))
            return
        if self.snapshots is None:
            logger.warning(
                "correction of %s to %s ignored: snapshots are off (set --data-dir)",
                correction.event_id,
                correction.bin,
            )
            return
        try:
            self.snapshots.correct(correction)
        except ValueError as e:
            logger.error("ignoring correction on %s: %s", topic, e)


def uninstall_home_assistant(
    client: Any,
    device_id: str,
    *,
    prefix: str = "whichbin",
    discovery_prefix: str = "homeassistant",
    timeout: float = 5.0,
) -> list[str]:
    """Clear a device's retained discovery configs (empty retained payloads).

    Args:
        client: a started, connected ``MqttClient``.

    Returns:
        The config topics cleared (acknowledged by the broker).
    """
    cleared = []
    for topic in removal_topics(device_id, prefix=prefix, discovery_prefix=discovery_prefix):
        if client.publish_confirmed(topic, b"", qos=1, retain=True, timeout=timeout):
            cleared.append(topic)
        else:
            logger.warning("could not clear %s", topic)
    return cleared
