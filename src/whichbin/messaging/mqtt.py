"""The one paho-mqtt adapter: URL parsing, TLS, last will, reconnect, subscriptions.

Core code sees only the ``Publisher`` protocol (``publish(topic, payload, qos, retain)``).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import sys
import threading
import time
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
        cert_file: str | None = None,
        key_file: str | None = None,
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
            try:  # a client certificate (whichbin certs) when the broker requires one
                self.client.tls_set(
                    ca_certs=ca_file,
                    certfile=cert_file,
                    keyfile=key_file,
                    cert_reqs=ssl.CERT_REQUIRED,
                )
            except (OSError, ValueError) as e:
                files = ", ".join(f for f in (ca_file, cert_file, key_file) if f) or "system CAs"
                raise ConfigError(f"MQTT TLS files ({files}): cannot load them ({e})") from e
        if will:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.keepalive = keepalive
        self._handlers: dict[str, MessageHandler] = {}
        self._on_connect_hooks: list[Callable[[], None]] = []
        self._connected = threading.Event()
        self._subscribed = threading.Event()  # no SUBSCRIBE of this connection awaits its ack
        self._pending: set[int] = set()  # mids of SUBSCRIBE/UNSUBSCRIBE packets not yet acked
        self._lock = threading.Lock()  # guards _handlers and _pending (never held while waiting)
        self.last_error: str | None = None  # why the last connection attempt failed
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_ack
        self.client.on_unsubscribe = self._on_ack

    # -- lifecycle ---------------------------------------------------------------
    def start(self, wait: float = 0.0) -> bool:
        """Connect in the background (retrying forever); optionally wait up to ``wait``
        seconds for the first connect and for the broker to acknowledge the subscriptions
        made before it, so no message published after this returns is missed.

        Returns:
            Without ``wait``, whether it is connected; with it, whether it is ``ready``.
        """
        self.client.connect_async(self.url.host, self.url.port, keepalive=self.keepalive)
        self.client.loop_start()
        if not wait:
            return self._connected.is_set()
        return self.wait_ready(wait)

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def ready(self) -> bool:
        """Connected, and the broker acknowledged the subscriptions made so far."""
        return self._connected.is_set() and self._subscribed.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until ``ready``; returns whether it is."""
        end = time.monotonic() + timeout
        if not self._connected.wait(timeout):
            return False
        self._subscribed.wait(max(0.0, end - time.monotonic()))
        return self.ready

    def failure(self, timeout: float) -> str:
        """One line saying why no connection came up: TLS, auth or unreachable."""
        where = f"{self.url.host}:{self.url.port}"
        why = self.last_error or f"unreachable: no answer within {timeout:g} s"
        if why.startswith("unreachable"):
            return f"cannot reach the MQTT broker at {where}: {why}"
        return f"the MQTT broker at {where} refused the connection: {why}"

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
        """Route messages on ``topic`` (a filter) to ``handler``, now and after every
        reconnect; ``ready`` is False until the broker acknowledged it."""
        with self._lock:  # the SUBACK's callback waits for the mid to be recorded
            self._handlers[topic] = handler
            if self._connected.is_set():
                self._expect_ack(self.client.subscribe(topic, qos))

    def read_retained(self, topic: str, timeout: float) -> bytes | None:
        """The message the broker keeps retained on ``topic`` (None when there is none),
        as this account may read it; the account must be allowed to read ``topic``, and
        this client must not subscribe to ``topic`` otherwise.

        Subscribes, then unsubscribes: the broker sends a subscription's retained message
        before it answers the next request on the connection, so once the UNSUBACK is in,
        whatever was kept has arrived.

        Raises:
            TimeoutError: The broker did not answer within ``timeout`` seconds.
        """
        got: list[bytes] = []
        self.subscribe(topic, lambda _t, payload: got.append(payload))
        end = time.monotonic() + timeout
        if not self.wait_ready(timeout):
            raise TimeoutError(f"no SUBACK for {topic} within {timeout:g} s")
        with self._lock:  # the handler stays until the UNSUBACK: the message may come first
            self._expect_ack(self.client.unsubscribe(topic))
        try:
            if not self.wait_ready(max(0.0, end - time.monotonic())):
                raise TimeoutError(f"no UNSUBACK for {topic} within {timeout:g} s")
        finally:
            with self._lock:
                self._handlers.pop(topic, None)
        return got[0] if got else None

    def _expect_ack(self, result: tuple[int, int | None]) -> None:
        """Record the mid of a SUBSCRIBE/UNSUBSCRIBE just sent (call with ``_lock`` held)."""
        rc, mid = result
        if rc == self._mqtt.MQTT_ERR_SUCCESS and mid is not None:
            self._pending.add(mid)
            self._subscribed.clear()

    # -- paho callbacks ----------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            self.last_error = _auth_error(str(reason_code), self.url.username)
            logger.warning(
                "MQTT connect to %s:%s: %s", self.url.host, self.url.port, self.last_error
            )
            return
        self.last_error = None
        logger.info("MQTT connected to %s:%s", self.url.host, self.url.port)
        with self._lock:  # a subscribe() meanwhile waits, then sends its own SUBSCRIBE
            topics = list(self._handlers)
            self._pending.clear()
            self._subscribed.set()
            if topics:  # one SUBSCRIBE for all: its SUBACK says every topic is in place
                self._expect_ack(client.subscribe([(t, 1) for t in topics]))
            self._connected.set()
        for hook in self._on_connect_hooks:
            try:
                hook()
            except Exception:
                logger.exception("on-connect hook failed")

    def _on_ack(self, client, userdata, mid, reason_codes, properties=None) -> None:  # noqa: ANN001
        """A SUBACK or UNSUBACK."""
        with self._lock:
            self._pending.discard(mid)
            if not self._pending:
                self._subscribed.set()

    def _on_connect_fail(self, client, userdata) -> None:  # noqa: ANN001
        # paho calls this inside its ``except OSError``: the error is the current exception.
        self.last_error = _connect_error(sys.exc_info()[1])
        logger.warning("MQTT connect to %s:%s: %s", self.url.host, self.url.port, self.last_error)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:  # noqa: ANN001
        if not self._connected.is_set() and self.url.tls and self.last_error is None:
            # Closed before CONNACK after a TLS handshake: the broker refused our certificate.
            self.last_error = (
                "TLS: the broker closed the connection during the handshake (is the client "
                "certificate missing, or from another CA?)"
            )
        with self._lock:
            self._connected.clear()
            self._subscribed.clear()
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


def _connect_error(e: BaseException | None) -> str:
    """TLS, or unreachable, from the exception of a failed connection attempt."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return (
            f"TLS: the broker's certificate is not trusted ({e.verify_message}); "
            "check mqtt.ca_file / --ca-file"
        )
    if isinstance(e, ssl.SSLError):
        reason = e.reason or str(e)
        return f"TLS: handshake failed ({reason}); check the client certificate and CA"
    if isinstance(e, ConnectionRefusedError):
        return "unreachable: connection refused (is the broker running on that port?)"
    if isinstance(e, socket.gaierror):
        return f"unreachable: unknown host ({e.strerror})"
    if isinstance(e, ConnectionResetError):
        return "TLS or protocol: the broker reset the connection (mqtts:// to a plain port?)"
    return f"unreachable: {e}" if e else "unreachable"


def _auth_error(reason: str, username: str | None) -> str:
    who = f"user {username}" if username else "anonymous clients"
    if "not authori" in reason.lower():
        return f"auth: not authorized ({who}); check the user name and password"
    if "password" in reason.lower():
        return f"auth: bad user name or password ({who}); check the password file/env"
    return f"refused by the broker: {reason}"


def create_mqtt_client(
    cfg: MqttConfig,
    client_id: str,
    will: tuple[str, str] | None = None,
    password: str | None = None,
) -> MqttClient:
    """A client for the ``mqtt`` section: its URL, keepalive, CA bundle and client
    certificate, and ``password`` or else the one in its ``password_file`` or ``password_env``."""
    if password is None:
        password = read_password(cfg.password_env, cfg.password_file)
    return MqttClient(
        cfg.url,
        client_id,
        will,
        password,
        cfg.ca_file,
        keepalive=cfg.keepalive,
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
    )
