"""The --http live view: an MJPEG stream of the camera with the decision drawn over it."""

from __future__ import annotations

import http.client
import io
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import wait_for
from tests.edge.fakes import ScriptedSource
from tests.edge.scenes import scene_frame
from tests.helpers import Broker
from whichbin.edge.config import HttpSettings
from whichbin.edge.liveview import BOUNDARY, LiveView, Overlay, draw_overlay


def first_part(port: int) -> tuple[str, bytes]:
    """GET /stream.mjpg and return its content type and first JPEG."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/stream.mjpg")
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


def test_edge_serves_its_live_view(broker: Broker, color_bundle: Path) -> None:
    from whichbin.edge.service import EdgeOptions, EdgeService

    camera = ScriptedSource(fps=50)
    svc = EdgeService(
        EdgeOptions(
            source="scripted",
            device_id=f"cam-{uuid.uuid4().hex[:8]}",
            mqtt_url=broker.url,
            model=color_bundle,
            http=HttpSettings(host="127.0.0.1", port=0),
        ),
        source=camera,
    ).start()
    try:
        assert wait_for(lambda: svc.runner.stats.frames > 3, 5)
        _, jpeg = first_part(svc.liveview.port)
        assert jpeg[:2] == b"\xff\xd8"
    finally:
        svc.stop()
