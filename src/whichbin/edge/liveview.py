"""``--http PORT``: a live MJPEG view of the camera with the decision drawn over it.

``GET /`` is a small page, ``GET /stream.mjpg`` the ``multipart/x-mixed-replace`` stream
(any browser, VLC, or Home Assistant's MJPEG camera), ``GET /snapshot.jpg`` one frame.
The frame loop only hands over a reference to its latest frame (``update``); drawing and
JPEG encoding happen here, on the HTTP threads, at most ``max_fps`` times a second and
only while someone watches, so an unwatched live view costs nothing.

With a password (``http.password_file``) every request needs HTTP Basic auth (any user
name, that password): browsers, VLC and Home Assistant's MJPEG camera all send it. Without
one the view is open to whoever reaches the port, and a warning says so unless it listens
on loopback only.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import http.server
import ipaddress
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from whichbin.config.edge import FULL_FRAME
from whichbin.contract import IDLE, UNSURE
from whichbin.edge.presence import roi_box
from whichbin.errors import ConfigError

logger = logging.getLogger(__name__)

BOUNDARY = "whichbinframe"
# BGR colours of the recipe's display: compost green, landfill red, recycling blue.
COLORS = {
    "compost": (60, 180, 60),
    "landfill": (50, 50, 220),
    "recycling": (220, 120, 40),
    UNSURE: (0, 140, 255),
    IDLE: (160, 160, 160),
}
PAGE = b"""<!doctype html><html><head><title>whichbin live</title>
<style>body{margin:0;background:#111;color:#eee;font-family:sans-serif}
img{display:block;max-width:100%;margin:auto}</style></head>
<body><img src="/stream.mjpg" alt="live view"></body></html>"""


@dataclass(frozen=True)
class Overlay:
    """What is drawn over the frame."""

    state: str = IDLE  # current bin, idle or unsure
    caption: str = ""  # the last decision, e.g. "recycling: plastic 0.93"
    present: bool = False
    paused: bool = False
    roi: tuple[float, float, float, float] = FULL_FRAME
    fps: float = 0.0


def basic_auth_ok(header: str | None, password: str) -> bool:
    """Whether an ``Authorization`` header carries ``password`` (HTTP Basic, any user)."""
    if not header or header[:6].lower() != "basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    _, sep, given = decoded.partition(":")
    return bool(sep) and hmac.compare_digest(given.encode(), password.encode())


def load_password(path: Path | None) -> str | None:
    """The live view's password from ``edge.http.password_file`` (None when unset)."""
    if path is None:
        return None
    try:
        value = Path(path).read_text().strip()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read edge.http.password_file ({e.strerror})") from e
    if not value:
        raise ConfigError(f"{path}: edge.http.password_file is empty")
    return value


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an interface to listen on) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def draw_overlay(image: np.ndarray, overlay: Overlay) -> np.ndarray:
    """RGB frame → BGR frame with the ROI, state and caption drawn on it."""
    import cv2

    bgr = np.ascontiguousarray(image[..., ::-1])
    h, w = bgr.shape[:2]
    color = COLORS.get(overlay.state, COLORS[IDLE])
    if tuple(overlay.roi) != FULL_FRAME:
        x0, y0, x1, y1 = roi_box(bgr.shape, overlay.roi)
        cv2.rectangle(bgr, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), 1)
    scale = max(0.4, w / 640)
    thick = max(1, int(round(scale * 2)))
    bar = int(28 * scale)
    cv2.rectangle(bgr, (0, 0), (w, bar), color, -1)
    status = overlay.state.upper() + (" (paused)" if overlay.paused else "")
    status += "  item" if overlay.present else ""
    cv2.putText(bgr, status, (6, bar - 8), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.7, (0, 0, 0), thick)
    foot = f"{overlay.caption}   {overlay.fps:.1f} fps".strip()
    cv2.putText(
        bgr, foot, (6, h - 8), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.5, (255, 255, 255), thick
    )
    return bgr


class LiveView:
    """The MJPEG server. ``update()`` from the frame loop; ``start()``/``stop()``.

    Args:
        host: interface to listen on (``0.0.0.0`` for the LAN).
        port: TCP port (0 picks a free one; see ``port`` after ``start``).
        max_fps: frames per second sent to each viewer at most.
        quality: JPEG quality.
        password: require HTTP Basic auth with this password (any user name); None: open.
    """

    def __init__(
        self,
        host: str = "0.0.0.0",
        port: int = 8081,
        max_fps: float = 10.0,
        quality: int = 75,
        password: str | None = None,
    ) -> None:
        if password is not None and not password:
            raise ValueError("live view password is empty")
        self.host, self.requested_port = host, port
        self.password = password
        self.period = 1.0 / max_fps if max_fps > 0 else 0.0
        self.quality = quality
        self._cond = threading.Condition()
        self._image: np.ndarray | None = None
        self._overlay = Overlay()
        self._seq = 0
        self._jpeg: tuple[int, bytes] | None = None  # (seq, bytes): shared by all viewers
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self.requested_port

    def update(self, image: np.ndarray, overlay: Overlay) -> None:
        """Hand over the latest frame (cheap: a reference, no copy, no encoding)."""
        with self._cond:
            self._image, self._overlay = image, overlay
            self._seq += 1
            self._cond.notify_all()

    def jpeg(self, after: int = 0, timeout: float = 2.0) -> tuple[int, bytes] | None:
        """The newest frame newer than ``after`` as (seq, JPEG), or None on timeout/stop."""
        import cv2

        with self._cond:
            if not self._cond.wait_for(
                lambda: self._seq > after or self._stopping.is_set(), timeout
            ):
                return None
            if self._stopping.is_set() or self._image is None:
                return None
            if self._jpeg is not None and self._jpeg[0] == self._seq:
                return self._jpeg
            seq, image, overlay = self._seq, self._image, self._overlay
        ok, buf = cv2.imencode(
            ".jpg", draw_overlay(image, overlay), [cv2.IMWRITE_JPEG_QUALITY, self.quality]
        )
        if not ok:
            return None
        with self._cond:
            self._jpeg = (seq, buf.tobytes())
            return self._jpeg

    def start(self) -> LiveView:
        view = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                logger.debug("live view: " + format, *args)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if view.password is not None and not basic_auth_ok(
                    self.headers.get("Authorization"), view.password
                ):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="whichbin live view"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path = self.path.split("?", 1)[0]
                if path in ("/", "/index.html"):
                    self._send(200, "text/html; charset=utf-8", PAGE)
                elif path == "/snapshot.jpg":
                    got = view.jpeg(0)
                    if got is None:
                        self._send(503, "text/plain", b"no frame yet\n")
                    else:
                        self._send(200, "image/jpeg", got[1])
                elif path == "/stream.mjpg":
                    self._stream()
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                seq = 0
                try:
                    while not view._stopping.is_set():
                        started = time.monotonic()
                        got = view.jpeg(seq)
                        if got is None:
                            continue
                        seq, data = got
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(data)}\r\n\r\n".encode()
                            + data
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        rest = view.period - (time.monotonic() - started)
                        if rest > 0:
                            view._stopping.wait(rest)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the viewer went away

        self._server = http.server.ThreadingHTTPServer((self.host, self.requested_port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="whichbin-liveview", daemon=True
        )
        self._thread.start()
        logger.info("live view on http://%s:%d/", self.host, self.port)
        if self.password is None and not is_loopback(self.host):
            logger.warning(
                "live view: anyone who can reach port %d sees the camera; set "
                "edge.http.password_file (or --http-password-file) to require a password",
                self.port,
            )
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
