"""The one paho-mqtt adapter: URL parsing, TLS, last will, reconnect, subscriptions.

Core code sees only the ``Publisher`` protocol (``publish(topic, payload, qos, retain)``).
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlparse

from whichbin.errors import ConfigError

if TYPE_CHECKING:
    from whichbin.config import MqttConfig

logger = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]


class Publisher(Protocol):
    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> bool:
        """Send a message; returns False when it could not be handed to the broker."""
        ...


@dataclass(frozen=True)
class MqttUrl:
    host: str
    port: int
    tls: bool
    username: str | None


def parse_mqtt_url(url: str) -> MqttUrl:
    """``mqtt://[user@]host[:port]`` or ``mqtts://``; a password in the URL is refused."""
    u = urlparse(url)
    if u.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"--mqtt {url!r}: scheme must be mqtt:// or mqtts://")
    if u.password:
        raise ConfigError(
            "--mqtt: put the password in WHICHBIN_MQTT_PASSWORD or a file, not in the URL"
        )
    if not u.hostname:
        raise ConfigError(f"--mqtt {url!r}: missing host")
    tls = u.scheme == "mqtts"
    return MqttUrl(u.hostname, u.port or (8883 if tls else 1883), tls, u.username or None)


def read_password(env: str = "WHICHBIN_MQTT_PASSWORD", file: str | None = None) -> str | None:
    """The broker password from a file or the environment (never from argv)."""
    if file:
        try:
            return Path(file).read_text().strip()
        except OSError as e:
            raise ConfigError(f"{file}: cannot read MQTT password file ({e.strerror})") from e
    return os.environ.get(env)


class MqttClient:
    """paho client with a last will, automatic reconnect and re-subscription on reconnect."""

    def __init__(
        self,
        url: str,
        client_id: str,
        will: tuple[str, str] | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        keepalive: int = 30,
    ) -> None:
        import paho.mqtt.client as mqtt

        self.url = parse_mqtt_url(url)
        self._mqtt = mqtt
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True
        )
        if self.url.username:
            self.client.username_pw_set(self.url.username, password)
        if self.url.tls:
            if ca_file and not Path(ca_file).is_file():
                raise ConfigError(f"{ca_file}: no such CA bundle (mqtt.ca_file or --ca-file)")
            self.client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
        if will:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.keepalive = keepalive
        self._handlers: dict[str, MessageHandler] = {}
        self._on_connect_hooks: list[Callable[[], None]] = []
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # -- lifecycle ---------------------------------------------------------------
    def start(self, wait: float = 0.0) -> bool:
        """Connect in the background (retrying forever); optionally wait for the first connect."""
        self.client.connect_async(self.url.host, self.url.port, keepalive=self.keepalive)
        self.client.loop_start()
        return self._connected.wait(wait) if wait else self._connected.is_set()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def on_connect(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` after every (re)connect, e.g. to publish availability."""
        self._on_connect_hooks.append(hook)

    # -- messaging ---------------------------------------------------------------
    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> bool:
        if not self._connected.is_set():
            return False
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == self._mqtt.MQTT_ERR_SUCCESS

    def publish_confirmed(
        self,
        topic: str,
        payload: str | bytes,
        qos: int = 1,
        retain: bool = False,
        timeout: float = 5,
    ) -> bool:
        """Publish and wait until the broker acknowledged it (QoS ≥ 1)."""
        if not self._connected.is_set():
            return False
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
            return False
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def subscribe(self, topic: str, handler: MessageHandler, qos: int = 1) -> None:
        with self._lock:
            self._handlers[topic] = handler
        if self._connected.is_set():
            self.client.subscribe(topic, qos)

    # -- paho callbacks ----------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            logger.warning(
                "MQTT connect to %s:%s refused: %s", self.url.host, self.url.port, reason_code
            )
            return
        logger.info("MQTT connected to %s:%s", self.url.host, self.url.port)
        with self._lock:
            topics = list(self._handlers)
        for t in topics:
            client.subscribe(t, 1)
        self._connected.set()
        for hook in self._on_connect_hooks:
            try:
                hook()
            except Exception:
                logger.exception("on-connect hook failed")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:  # noqa: ANN001
        self._connected.clear()
        if getattr(self, "_stopping", False):
            logger.info("MQTT disconnected")
        else:
            logger.warning("MQTT disconnected (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg) -> None:  # noqa: ANN001
        with self._lock:
            handlers = list(self._handlers.items())
        for pattern, handler in handlers:
            if self._mqtt.topic_matches_sub(pattern, msg.topic):
                try:
                    handler(msg.topic, msg.payload)
                except Exception:
                    logger.exception("handler for %s failed", msg.topic)


def create_mqtt_client(
    cfg: MqttConfig, client_id: str, will: tuple[str, str] | None = None
) -> MqttClient:
    """A client for the ``mqtt`` section: its URL, keepalive and CA bundle, and the password
    from its ``password_file`` or ``password_env``."""
    password = read_password(cfg.password_env, cfg.password_file)
    return MqttClient(cfg.url, client_id, will, password, cfg.ca_file, keepalive=cfg.keepalive)
