"""Shared fixtures: a real mosquitto broker (plain, or locked down as deploy/mosquitto/
ships it), the shared images, a tiny real ONNX bundle."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Broker, SigningKey, TlsBroker, make_color_bundle

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip with the reason where it is absent (a user's fresh clone)."""
    if not (SHARED_DATA / "trashnet").is_dir():
        pytest.skip(f"needs the shared images at {SHARED_DATA} (absent in a fresh clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real mosquitto on 127.0.0.1, one per test session."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        pytest.fail("mosquitto is not installed: run bash scripts/test (it installs it)")
    b = Broker(exe, free_port(), tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


@pytest.fixture()
def fresh_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of the test's own, for tests that stop and restart it."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    b = Broker(exe, free_port(), tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


TLS_USERS = ("kitchen", "cam2", "registry", "display-kitchen")  # cameras, approver, display


@pytest.fixture(scope="module")
def tls_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsBroker]:
    """A real mosquitto started from deploy/mosquitto/ (TLS, a certificate and password per
    account in TLS_USERS, the shipped ACL), one per module. Parametrize it indirectly with
    the ACL's opt-in blocks to enable, e.g. ``("deeplens",)``."""
    if not shutil.which("mosquitto_passwd"):
        pytest.fail("mosquitto_passwd is not installed (apt-get install -y mosquitto)")
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    opt_in = getattr(request, "param", ())
    b = TlsBroker(exe, free_port(), tmp_path_factory.mktemp("tls"), TLS_USERS, opt_in)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session", autouse=True)
def signing_key() -> Iterator[SigningKey]:
    """The approver's key for the whole session: approvals sign with it (through
    WHICHBIN_DEPLOY__SIGNING_KEY, which subprocesses inherit); edges trust ``.public``."""
    key = SigningKey.session()
    saved = {k: os.environ.get(k) for k in ("WHICHBIN_DEPLOY__SIGNING_KEY", "XDG_CONFIG_HOME")}
    os.environ["WHICHBIN_DEPLOY__SIGNING_KEY"] = str(key.path)
    os.environ["XDG_CONFIG_HOME"] = str(key.path.parent / "xdg")  # never the user's own
    yield key
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def color_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real ONNX bundle: red → trash (landfill), green → organic (compost),
    blue → plastic (recycling)."""
    return make_color_bundle(tmp_path_factory.mktemp("bundle") / "color.onnx")


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:  # noqa: ANN001
    """Poll until predicate() is truthy."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


__all__ = ["wait_for", "free_port", "subprocess"]
