"""The display's MQTT side: subscribe, feed :class:`DisplayApp`, tick, publish corrections.

Reconnects and resubscribes by itself (through :class:`MqttClient`); while the broker
is unreachable the display shows the disconnected X. Joystick corrections go through an
on-disk :class:`~whichbin.messaging.outbox.SqliteOutbox` when one is given, so a
correction made while the broker is away is sent once it is back (also after a restart).

In-process use (what the end-to-end tests do)::

    display = RecorderDisplay()
    runner = start_display(MqttConfig(), PiConfig(device_id="bin-1", hold=0.5), display)
    display.wait_for(render("compost"))     # after an event for bin-1 is published
    runner.stop()
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from whichbin.config import MqttConfig, PiConfig
from whichbin.contract import Topics, utc_now
from whichbin.errors import ConfigError
from whichbin.messaging.mqtt import MqttClient, create_mqtt_client
from whichbin.messaging.outbox import OutboxDrainer, SqliteOutbox
from whichbin.pi.app import DisplayApp
from whichbin.pi.displays import Display, StickSource

logger = logging.getLogger(__name__)


class DisplayRunner:
    """Connects a :class:`DisplayApp` to a broker and ticks it on a background thread.

    Args:
        app: the state machine (holds the display).
        client: an unstarted :class:`MqttClient`; ``start()`` starts it.
        topics: the device's topics (``event``, ``state``, ``correction``).
        deeplens_topic: also show the recipe's ``{"object": ...}`` messages from here.
        stick: joystick source polled every tick (a ``SenseHatDisplay``, a
            ``RecorderDisplay`` in tests), or None.
        tick_interval: seconds between ticks (hold expiry, connection and stick polling).
        outbox: where corrections wait for the broker; None: publish directly and drop
            (with a warning) a correction made while disconnected.
    """

    def __init__(
        self,
        app: DisplayApp,
        client: MqttClient,
        topics: Topics,
        deeplens_topic: str | None = None,
        stick: StickSource | None = None,
        tick_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utc_now,
        outbox: SqliteOutbox | None = None,
    ) -> None:
        self.app = app
        self.client = client
        self.topics = topics
        self.deeplens_topic = deeplens_topic
        self.stick = stick
        self.tick_interval = tick_interval
        self.clock = clock
        self.wall_clock = wall_clock
        self.corrections_sent = 0  # published directly (no outbox)
        self.outbox = outbox
        self.drainer = OutboxDrainer(outbox, client) if outbox is not None else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------
    def start(self, wait: float = 0.0) -> DisplayRunner:
        """Subscribe, connect in the background and start ticking.

        ``wait`` seconds to wait for the first connection (the display shows the
        disconnected X until then either way).
        """
        self.client.subscribe(self.topics.event, self._on_event)
        self.client.subscribe(self.topics.state, self._on_state)
        if self.deeplens_topic:
            self.client.subscribe(self.deeplens_topic, self._on_deeplens, qos=0)
        self._refresh()  # the disconnected X until the first connect
        self.client.start(wait)
        if self.drainer is not None:
            if pending := len(self.drainer.outbox):
                logger.info("display: %d corrections from an earlier run wait to be sent", pending)
            self.drainer.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="whichbin-pi-display", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop ticking and disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self.drainer is not None:
            self.drainer.stop()
        self.client.stop()
        if self.outbox is not None:
            self.outbox.close()

    def request_stop(self) -> None:
        """Make ``run_forever`` return (safe from a signal handler)."""
        self._stop.set()

    def run_forever(self) -> None:
        """Run until Ctrl+C or ``stop()`` (the CLI's loop); starts the runner if needed."""
        if self._thread is None:
            self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            logger.info("display: stopping")
        finally:
            self.stop()

    # -- ticking ------------------------------------------------------------------
    def _refresh(self) -> None:
        now = self.clock()
        self.app.set_connected(self.client.connected, now)
        self.app.tick(now)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_interval):
            try:
                self._poll_stick()
                self._refresh()
            except Exception:
                logger.exception("display tick failed")

    def _poll_stick(self) -> None:
        if self.stick is None:
            return
        for event in self.stick.stick_events():
            correction = self.app.on_stick(event, self.clock(), self.wall_clock())
            if correction is None:
                continue
            if self.outbox is not None:
                self.outbox.put(self.topics.correction, correction.to_json(), qos=1)
            elif self.client.publish(self.topics.correction, correction.to_json(), qos=1):
                self.corrections_sent += 1
            else:
                logger.warning(
                    "correction of %s not sent: MQTT is disconnected", correction.event_id
                )

    # -- MQTT handlers (paho's thread) ----------------------------------------------
    def _on_event(self, topic: str, payload: bytes) -> None:
        self.app.on_event(payload, self.clock())
        self._refresh()

    def _on_state(self, topic: str, payload: bytes) -> None:
        self.app.on_state(payload, self.clock(), self.wall_clock())
        self._refresh()

    def _on_deeplens(self, topic: str, payload: bytes) -> None:
        self.app.on_deeplens(payload, self.clock())
        self._refresh()


def _open_outbox(path: Path) -> SqliteOutbox:
    try:
        return SqliteOutbox(path)
    except (OSError, sqlite3.Error) as e:
        raise ConfigError(f"{path}: cannot open the corrections outbox ({e})") from e


def start_display(
    mqtt: MqttConfig,
    config: PiConfig,
    display: Display,
    *,
    stick: StickSource | None = None,
    tick_interval: float = 0.1,
    wait: float = 0.0,
    client_id: str | None = None,
) -> DisplayRunner:
    """Build and start the display for the ``pi`` section on the ``mqtt`` section's broker.

    ``stick`` defaults to the display itself when it reports joystick events (the Sense
    HAT, the emulator, ``RecorderDisplay``). Corrections wait in
    ``config.data_dir/outbox.sqlite`` while the broker is unreachable (no ``data_dir``:
    they are dropped then). Returns the started runner; call ``stop()``.

    Raises:
        ConfigError: No ``device_id``, or the outbox cannot be opened.
    """
    device_id = str(config.require().device_id)
    app = DisplayApp(
        display, hold=config.hold, rotation=config.rotation, brightness=config.brightness
    )
    client = create_mqtt_client(
        mqtt, client_id or f"whichbin-pi-{device_id}-{uuid.uuid4().hex[:8]}"
    )
    if stick is None and callable(getattr(display, "stick_events", None)):
        stick = display  # type: ignore[assignment]
    outbox = None if config.data_dir is None else _open_outbox(config.data_dir / "outbox.sqlite")
    runner = DisplayRunner(
        app,
        client,
        Topics(device_id, mqtt.prefix),
        deeplens_topic=config.deeplens_topic,
        stick=stick,
        tick_interval=tick_interval,
        outbox=outbox,
    )
    return runner.start(wait)
