"""Test helpers: mosquitto process wrappers (plain, and locked down as deploy/mosquitto/
ships it), an MQTT recorder and a tiny ONNX bundle."""

from __future__ import annotations

import atexit
import functools
import getpass
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class Broker:
    """A real mosquitto process on 127.0.0.1 that tests can stop and restart."""

    def __init__(self, exe: str, port: int, workdir: Path, persistent: bool = False) -> None:
        self.exe, self.port, self.workdir = exe, port, Path(workdir)
        self.persistent = persistent  # keep sessions and queued messages across a restart
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        """The mosquitto.conf this broker runs with: anonymous, plain MQTT."""
        conf = self.workdir / "mosquitto.conf"
        persistence = (
            f"persistence true\npersistence_location {self.workdir}/\n"
            if self.persistent
            else "persistence false\n"
        )
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{persistence}")
        return conf

    def start(self) -> None:
        conf = self.write_config()
        log = self.workdir / "mosquitto.log"
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(
                [self.exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=err
            )
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {log.read_text()}") from None
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class Recorder:
    """Subscribes with a real paho client and keeps every message (topic, payload, retain).

    It is ready when the broker has acknowledged every subscription; ``sync`` waits until
    what was sent before it has arrived (for checks that something did *not* arrive).
    """

    def __init__(
        self,
        url: str,
        topics: list[str],
        client_id: str | None = None,
        *,
        password: str | None = None,
        **tls: str,
    ) -> None:
        """``client_id``: a persistent session (QoS 1 messages queued for it while it is
        away, reconnecting within seconds), what a home automation would run. An
        ``mqtts://user@`` URL logs in with ``password`` and ``tls``'s ``ca_file``,
        ``cert_file`` and ``key_file``."""
        import paho.mqtt.client as mqtt

        from whichbin.messaging.mqtt import parse_mqtt_url

        where = parse_mqtt_url(url)
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        if client_id is None:
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        else:
            self.client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
            )
            self.client.reconnect_delay_set(1, 2)
        self._subscribed = threading.Semaphore(0)

        def on_connect(c, u, f, rc, p=None):  # noqa: ANN001
            for t in topics:
                c.subscribe(t, 1)

        def on_subscribe(c, u, mid, codes, p=None):  # noqa: ANN001
            self._subscribed.release()

        def on_message(c, u, m):  # noqa: ANN001
            with self._lock:
                self.messages.append((m.topic, m.payload, bool(m.retain)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        if where.username:
            self.client.username_pw_set(where.username, password)
        if where.tls:
            self.client.tls_set(
                ca_certs=tls.get("ca_file"),
                certfile=tls.get("cert_file"),
                keyfile=tls.get("key_file"),
            )
        self.client.connect(where.host, where.port)
        self.client.loop_start()
        for t in topics:
            if not self._subscribed.acquire(timeout=10):
                raise RuntimeError(f"recorder could not subscribe to {t}")

    def sync(self, topic: str, via: Any = None, timeout: float = 10.0) -> None:
        """Wait until what was sent before now has arrived: publish a marker on ``topic`` (a
        topic this recorder subscribes to) and wait for it; the marker is not kept.

        Args:
            via: the client whose earlier messages must have arrived (an ``MqttClient``; a
                broker forwards one client's messages on a topic in order); default this
                recorder's own client, after the retained messages of its subscriptions.
        """
        marker = f"sync-{uuid.uuid4().hex}".encode()
        if via is None:
            self.client.publish(topic, marker, qos=1)
        elif not via.publish(topic, marker, qos=1):
            raise RuntimeError(f"could not publish the sync marker on {topic}")
        end = time.monotonic() + timeout
        while not any(p == marker for _, p, _ in self.messages):
            if time.monotonic() > end:
                raise TimeoutError(f"the sync marker on {topic} did not arrive")
            time.sleep(0.01)
        with self._lock:
            self.messages = [m for m in self.messages if m[1] != marker]

    def payloads(self, topic: str) -> list[dict | str]:
        with self._lock:
            out = []
            for t, p, _ in self.messages:
                if t == topic:
                    try:
                        out.append(json.loads(p))
                    except ValueError:
                        out.append(p.decode())
            return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


DEPLOY_MOSQUITTO = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto"
OPT_IN = {"deeplens": "#deeplens "}  # deploy/mosquitto/acl's opt-in lines, by their prefix


class TlsBroker(Broker):
    """A real mosquitto started from deploy/mosquitto/ exactly as shipped (TLS, a
    certificate and a password per client, the ACL), rendered into ``workdir``: its
    paths, a port on 127.0.0.1, and one account per name in ``users`` (password
    ``pw-<name>``, certificate ``<name>.crt``/``.key``, password file ``<name>.pw``).
    ``workdir/rogue`` holds a certificate for ``users[0]`` from another CA.

    Args:
        opt_in: the acl's opt-in blocks to enable (``"deeplens"``: cameras publish
            deeplens/trash/infer, the recipe's Pi script's account reads it).
    """

    def __init__(
        self,
        exe: str,
        port: int,
        workdir: Path,
        users: tuple[str, ...],
        opt_in: tuple[str, ...] = (),
    ) -> None:
        from whichbin.security.certs import create_certificates

        super().__init__(exe, port, workdir)
        self.users, self.opt_in = users, opt_in
        create_certificates(self.workdir, ["127.0.0.1", "localhost"], list(users))
        create_certificates(self.workdir / "rogue", [], [users[0]])  # same name, another CA
        passwd = self.workdir / "passwd"
        for i, user in enumerate(users):
            flags = ["-c"] if i == 0 else []
            subprocess.run(
                ["mosquitto_passwd", *flags, "-b", str(passwd), user, f"pw-{user}"], check=True
            )
            (self.workdir / f"{user}.pw").write_text(f"pw-{user}\n")

    def write_config(self) -> Path:
        """deploy/mosquitto's whichbin.conf and acl with this folder's paths and port."""
        folder = self.workdir
        conf = (DEPLOY_MOSQUITTO / "whichbin.conf").read_text()
        conf = conf.replace("/etc/mosquitto/whichbin", str(folder))
        conf = conf.replace("listener 8883", f"listener {self.port} 127.0.0.1")
        # tmp files: stay this user (root would drop to the mosquitto user)
        conf += f"user {getpass.getuser()}\n"
        acl = (DEPLOY_MOSQUITTO / "acl").read_text()
        for name in self.opt_in:
            acl = acl.replace(OPT_IN[name], "")
        (folder / "acl").write_text(acl)
        (folder / "whichbin.conf").write_text(conf)
        return folder / "whichbin.conf"

    @property
    def url(self) -> str:
        return self.url_for(None)  # anonymous: refused

    def url_for(self, user: str | None) -> str:
        return f"mqtts://{user + '@' if user else ''}127.0.0.1:{self.port}"

    def files(self, name: str) -> dict[str, str]:
        """``ca_file``, ``cert_file`` and ``key_file`` of the client certificate ``name``."""
        folder = self.workdir
        return {
            "ca_file": str(folder / "ca.crt"),
            "cert_file": str(folder / f"{name}.crt"),
            "key_file": str(folder / f"{name}.key"),
        }

    def client(
        self, user: str | None, password: str | None = None, cert: str | None = None, **kw: str
    ) -> Any:
        """An ``MqttClient`` (not started) as ``user``; ``cert``: another client's
        certificate; ``kw``: ``ca_file``/``cert_file``/``key_file`` to use instead."""
        from whichbin.messaging.mqtt import MqttClient

        name = cert or user or self.users[0]
        return MqttClient(
            self.url_for(user),
            f"{name}-{uuid.uuid4().hex[:6]}",
            password=password if password is not None else f"pw-{user}",
            **{**self.files(name), **kw},
        )

    def mqtt(self, user: str) -> Any:
        """The ``mqtt`` section (a MqttConfig) of the account ``user``."""
        from whichbin.config import MqttConfig

        pw = str(self.workdir / f"{user}.pw")
        return MqttConfig(url=self.url_for(user), password_file=pw, **self.files(user))

    def env(self, user: str) -> dict[str, str]:
        """The ``mqtt`` section of ``user`` as WHICHBIN_MQTT__* variables (for a command)."""
        section = self.mqtt(user).model_dump(include={"url", "password_file", *self.files(user)})
        return {f"WHICHBIN_MQTT__{k.upper()}": v for k, v in section.items()}

    def recorder(self, user: str, topics: list[str]) -> Recorder:
        """A Recorder logged in as ``user`` (it sees what that account may read)."""
        return Recorder(self.url_for(user), topics, password=f"pw-{user}", **self.files(user))


COLOR_LABELS = ["trash", "organic", "plastic"]  # R, G, B


def make_color_bundle(path: Path, version: str = "test/1", size: int = 32) -> Path:
    """A real ONNX bundle (no torch): embedding = mean RGB in [-1, 1], logits = 6 * embedding."""
    import onnx
    from onnx import TensorProto, helper

    from whichbin.inference import BundleMeta, write_meta

    w = np.eye(3, dtype=np.float32) * 6.0
    b = np.zeros(3, dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["embedding"], axis=1),
            helper.make_node(
                "Gemm", ["embedding", "head.weight", "head.bias"], ["logits"], transB=1
            ),
        ],
        "color",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 3]),
        ],
        initializer=[
            onnx.numpy_helper.from_array(w, "head.weight"),
            onnx.numpy_helper.from_array(b, "head.bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    meta = BundleMeta(
        labels=COLOR_LABELS,
        bins={"trash": "landfill", "organic": "compost", "plastic": "recycling"},
        preprocess={"size": size, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
        temperature=1.0,
        version=version,
        rules={"name": "test", "version": "1", "threshold": 0.6},
        created="2026-01-01T00:00:00Z",
    )
    write_meta(path, meta)
    return path


COLORS = {"landfill": (220, 30, 30), "compost": (30, 220, 30), "recycling": (30, 30, 220)}


def solid_image(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (96, 72)) -> Path:
    """Write a solid-colour JPEG (with a little noise so it is a real photo-like file)."""
    from PIL import Image

    rng = np.random.default_rng(abs(hash((path.name, rgb))) % 2**32)
    arr = np.clip(np.array(rgb)[None, None, :] + rng.normal(0, 4, (size[1], size[0], 3)), 0, 255)
    Image.fromarray(arr.astype(np.uint8)).save(path, quality=92)
    return path


@dataclass(frozen=True)
class SigningKey:
    """An approver's key pair on disk: ``path`` (private, 0600) and ``public`` (PEM)."""

    path: Path
    public: Path

    @classmethod
    @functools.cache
    def session(cls) -> SigningKey:
        """One key pair per test process (the conftest makes approvals sign with it)."""
        folder = Path(tempfile.mkdtemp(prefix="whichbin-keys-"))
        atexit.register(shutil.rmtree, folder, True)
        return cls.create(folder)

    @classmethod
    def create(cls, folder: Path) -> SigningKey:
        from whichbin.security.keys import create_key_file, write_public_key

        signer = create_key_file(folder / "signing-key.pem")
        write_public_key(signer, folder / "public.pem")
        return cls(folder / "signing-key.pem", folder / "public.pem")

    @property
    def signer(self) -> Any:
        from whichbin.security.signing import Signer

        return Signer.from_file(self.path)

    def edge_security(self, file_root: Path | None = None, **fetch: Any) -> Any:
        """``edge.security`` trusting this key; file:// allowed under ``file_root``."""
        from whichbin.config import EdgeSecurityConfig, FetchPolicy

        return EdgeSecurityConfig(
            trusted_keys=[self.public], fetch=FetchPolicy(file_root=file_root, **fetch)
        )

    def guard(self, file_root: Path | None = None, **fetch: Any) -> Any:
        """A DeploymentGuard trusting this key."""
        from whichbin.security.guard import DeploymentGuard

        return DeploymentGuard.from_settings(self.edge_security(file_root, **fetch))

    def sign(self, deployment: Any, name: str | None = None) -> Any:
        """``deployment`` (a contract.Deployment) with size, signature and key_id set."""
        from whichbin.security.signing import model_name

        size = deployment.size if deployment.size is not None else 0
        sig = self.signer.sign(
            name or model_name(deployment.version), deployment.version, deployment.sha256, size
        )
        return deployment.model_copy(
            update={"size": size, "signature": sig.signature, "key_id": sig.key_id}
        )
