"""The --http live view: an MJPEG stream of the camera with the decision drawn over it."""

from __future__ import annotations

import base64
import http.client
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import wait_for
from tests.edge.conftest import StartEdge
from tests.edge.fakes import ScriptedSource
from tests.edge.scenes import scene_frame
from whichbin.config import HttpConfig
from whichbin.edge.liveview import (
    BOUNDARY,
    LiveView,
    Overlay,
    basic_auth_ok,
    draw_overlay,
    is_loopback,
    load_password,
)
from whichbin.errors import ConfigError


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def first_part(port: int, headers: dict[str, str] | None = None) -> tuple[str, bytes]:
    """GET /stream.mjpg and return its content type and first JPEG."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/stream.mjpg", headers=headers or {})
    resp = conn.getresponse()
    ctype = resp.getheader("Content-Type") or ""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += resp.read(1)
    assert head.startswith(f"--{BOUNDARY}".encode())
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    data = resp.read(length)
    conn.close()
    return ctype, data


def test_overlay_draws_the_state_bar_in_the_bin_colour() -> None:
    frame = np.full((120, 160, 3), 128, np.uint8)
    bgr = draw_overlay(frame, Overlay(state="recycling", caption="recycling: plastic 0.93"))
    assert bgr.shape == frame.shape
    assert bgr[2, 80].tolist() != [128, 128, 128]  # the bar is drawn over the top


def test_stream_page_and_snapshot() -> None:
    view = LiveView("127.0.0.1", 0, max_fps=50).start()
    try:
        view.update(scene_frame(None, 0), Overlay(state="compost", present=True))
        ctype, jpeg = first_part(view.port)
        assert ctype == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        with Image.open(io.BytesIO(jpeg)) as im:
            assert im.size == (96, 72) and im.format == "JPEG"
        conn = http.client.HTTPConnection("127.0.0.1", view.port, timeout=5)
        conn.request("GET", "/")
        assert b"/stream.mjpg" in conn.getresponse().read()
        conn.request("GET", "/snapshot.jpg")
        assert conn.getresponse().read()[:2] == b"\xff\xd8"
        conn.request("GET", "/nope")
        assert conn.getresponse().status == 404
        conn.close()
    finally:
        view.stop()


def with_live_view(start_edge: StartEdge, bundle: Path, settings: HttpConfig) -> Any:
    """A running edge on a scripted camera with a live view, frames flowing."""
    svc = start_edge(ScriptedSource(fps=50), model=bundle, http=settings)
    assert wait_for(lambda: svc.runner.stats.frames > 3, 5)
    return svc


def test_edge_serves_its_live_view(color_bundle: Path, start_edge: StartEdge) -> None:
    svc = with_live_view(start_edge, color_bundle, HttpConfig(host="127.0.0.1", port=0))
    _, jpeg = first_part(svc.liveview.port)
    assert jpeg[:2] == b"\xff\xd8"


def test_basic_auth_header_checks() -> None:
    assert basic_auth_ok(basic("viewer", "s3cret"), "s3cret")
    assert basic_auth_ok(basic("", "s3cret"), "s3cret")  # any user name
    assert basic_auth_ok("basic " + basic("a", "s3cret")[6:], "s3cret")  # scheme is caseless
    assert not basic_auth_ok(basic("viewer", "wrong"), "s3cret")
    assert not basic_auth_ok(basic("viewer", "s3cret "), "s3cret")
    assert not basic_auth_ok(None, "s3cret")
    assert not basic_auth_ok("Bearer s3cret", "s3cret")
    assert not basic_auth_ok("Basic !!!not-base64", "s3cret")
    assert not basic_auth_ok("Basic " + base64.b64encode(b"no-colon").decode(), "no-colon")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")


def test_password_file_errors_name_the_file(tmp_path: Path) -> None:
    assert load_password(None) is None
    (tmp_path / "pw").write_text("s3cret\n")
    assert load_password(tmp_path / "pw") == "s3cret"
    (tmp_path / "empty").write_text("\n")
    for bad in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(ConfigError, match=str(bad)):
            load_password(bad)


def test_edge_live_view_with_a_password_needs_it(
    color_bundle: Path, tmp_path: Path, start_edge: StartEdge
) -> None:
    (tmp_path / "http-password").write_text("s3cret\n")
    settings = HttpConfig(host="127.0.0.1", port=0, password_file=tmp_path / "http-password")
    svc = with_live_view(start_edge, color_bundle, settings)
    for path in ("/", "/stream.mjpg", "/snapshot.jpg"):
        for headers in ({}, {"Authorization": basic("viewer", "guess")}):
            conn = http.client.HTTPConnection("127.0.0.1", svc.liveview.port, timeout=5)
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            assert resp.status == 401, path
            assert resp.getheader("WWW-Authenticate", "").startswith("Basic ")
            conn.close()
    _, jpeg = first_part(svc.liveview.port, {"Authorization": basic("viewer", "s3cret")})
    assert jpeg[:2] == b"\xff\xd8"
