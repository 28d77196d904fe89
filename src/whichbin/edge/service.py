"""One edge device, wired: MQTT client (availability, last will, commands, corrections,
Home Assistant discovery), the on-disk outbox, frame source on a capture thread, fixed
model or deployment follower, snapshots, the live view and the runner. What ``whichbin
edge run`` starts, and what a test starts in-process::

    svc = EdgeService(EdgeOptions(source="frames/", device_id="cam1",
                                  mqtt_url=broker.url, models_dir=tmp / "models",
                                  data_dir=tmp / "edge")).start()
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
from whichbin.contract import BINS, OFFLINE, ONLINE, Correction, Topics, utc_now
from whichbin.edge.capture import ThreadedSource
from whichbin.edge.config import EdgeOptions
from whichbin.edge.follower import DeploymentFollower
from whichbin.edge.homeassistant import birth_topic, discovery_messages, removal_topics
from whichbin.edge.output import EdgeOutput
from whichbin.edge.presence import PresenceDetector
from whichbin.edge.runner import ActiveModel, EdgeRunner, ModelProvider, RunStats, StaticModel
from whichbin.edge.sources import FrameSource, create_source
from whichbin.errors import ConfigError, validation_message

logger = logging.getLogger(__name__)

__all__ = ["EdgeOptions", "EdgeService", "uninstall_home_assistant"]

_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


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
        self.rules = load_rules(options.rules) if options.rules else None
        self.client = create_mqtt_client(
            options.mqtt_url,
            client_id=f"whichbin-edge-{options.device_id}",
            will=(self.topics.availability, OFFLINE),
            password_env=options.password_env,
            password_file=options.password_file,
            ca_file=options.ca_file,
        )
        self.client.keepalive = options.keepalive
        self.follower: DeploymentFollower | None = None
        self.models: ModelProvider
        if options.model is not None:
            self.models = StaticModel(self._load_model(options.model))
        else:
            self.follower = DeploymentFollower(
                options.device_id,
                options.models_dir,
                self.client,
                prefix=options.prefix,
                rules=self.rules,
                clock=clock,
                fallback_default=options.default_model,
                load=self._load_classifier,
            )
            self.models = self.follower
        self.outbox: Any = None
        self.drainer: Any = None
        self.snapshots: Any = None
        counters_file = None
        if options.data_dir is not None:
            data_dir = Path(options.data_dir)
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
            publish_snapshots=options.snapshots.publish and self.snapshots is not None,
            counters_file=counters_file,
            deeplens=options.deeplens,
        )
        self.liveview: Any = None
        if options.http.port is not None:
            from whichbin.edge.liveview import LiveView, load_password

            self.liveview = LiveView(
                options.http.host,
                options.http.port,
                options.http.max_fps,
                password=load_password(options.http.password_file),
            )
        self.runner = EdgeRunner(
            self.source,
            self.models,
            self.output,
            options.device_id,
            prefix=options.prefix,
            clock=clock,
            presence=PresenceDetector(options.presence),
            decider=options.decision.create_decider(),
            max_frames=options.max_frames,
            on_frame=self.liveview.update if self.liveview is not None else None,
            classify_all=options.classify_all,
        )
        self._thread: threading.Thread | None = None
        self.stats: RunStats | None = None
        self.error: BaseException | None = None

    def _open_data_dir(self, data_dir: Path) -> None:
        """The outbox and the snapshot store under ``data_dir`` (created when missing)."""
        options = self.options
        data_dir.mkdir(parents=True, exist_ok=True)
        if options.outbox:
            from whichbin.messaging.outbox import OutboxDrainer, SqliteOutbox

            self.outbox = SqliteOutbox(data_dir / "outbox.sqlite")
            self.drainer = OutboxDrainer(self.outbox, self.client, retry_interval=1.0)
            if pending := self.outbox.pending():
                logger.info("%d events from an earlier run wait to be sent", pending)
        if options.snapshots.enabled:
            from whichbin.edge.snapshots import SnapshotStore

            self.snapshots = SnapshotStore(data_dir / "snapshots", options.snapshots.policy())

    def _load_classifier(self, path: Path) -> Any:
        from whichbin.inference import OnnxClassifier

        return OnnxClassifier(path, self.rules, threads=self.options.threads)

    def _load_model(self, path: Path) -> ActiveModel:
        return ActiveModel.from_classifier(self._load_classifier(path))

    def _create_source(self, given: FrameSource | None) -> ThreadedSource:
        opts = self.options
        if given is not None:
            raw, reopen = given, None
        else:

            def reopen() -> FrameSource:
                return create_source(
                    opts.source, opts.fps, loop=not opts.exit_at_end, stills=opts.stills
                )

            raw = reopen()
        live = bool(getattr(raw, "live", False))
        return ThreadedSource(
            raw,
            drop=live if opts.drop_frames is None else opts.drop_frames,
            # a camera or stream is re-opened; a file re-opened would replay from the start
            reopen=reopen if live else None,
            restart_on_end=live,
            max_backoff=opts.max_backoff,
        )

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
        self.client.subscribe(self.topics.correction, self._correction)
        if opts.homeassistant.enabled:
            self.client.subscribe(birth_topic(opts.homeassistant.discovery_prefix), self._ha_birth)
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
        logger.info("edge %s stopped", self.options.device_id)

    # -- MQTT callbacks (network thread) ---------------------------------------------
    def _on_connect(self) -> None:
        self.client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        if self.options.homeassistant.enabled:
            self.publish_discovery()
        self.runner.republish_state()
        if self.follower is not None:
            self.follower.republish_status()
        if self.outbox is not None:
            self.outbox.wake()  # send what waited for the broker now, not at the next retry

    def publish_discovery(self) -> int:
        """Publish the retained Home Assistant discovery configs; returns how many."""
        ha = self.options.homeassistant
        messages = discovery_messages(
            self.options.device_id,
            prefix=self.options.prefix,
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
        elif self.options.model is not None:
            threading.Thread(
                target=self._reload_static, name="whichbin-reload", daemon=True
            ).start()

    def _reload_static(self) -> None:
        assert isinstance(self.models, StaticModel) and self.options.model is not None
        try:
            model = self._load_model(self.options.model)
        except Exception as e:
            logger.error(
                "reload: cannot load %s (%s); keeping the current model", self.options.model, e
            )
            return
        if model.sha256 != self.models.model.sha256:
            self.models.replace(model)
            logger.info("reload: now running %s (%s)", model.version, model.sha256[:12])
        else:
            logger.info("reload: %s is unchanged", self.options.model)

    def _bins(self) -> set[str]:
        """The bins a correction may name: the rule pack's, else the running model's."""
        if self.rules is not None:
            return set(self.rules.bins)
        model = self.models.current()
        return set(model.classifier.label_to_bin.values()) if model else set(BINS)

    def _correction(self, topic: str, payload: bytes) -> None:
        try:
            correction = Correction.model_validate_json(payload)
        except ValidationError as e:
            logger.error("ignoring correction on %s", validation_message(e, topic, top="payload"))
            return
        bins = self._bins()
        if correction.bin not in bins:  # a bin folder becomes training data: only real bins
            logger.error(
                "ignoring correction on %s: %.40r is not a bin (expected one of %s)",
                topic,
                correction.bin,
                ", ".join(sorted(bins)),
            )
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
