"""Frame sources: camera index, device path, rtsp/http stream, video file, folder of images.

Every source satisfies ``FrameSource``: ``read()`` returns the next RGB frame, or ``None``
when a finite source (file, folder) has ended or the source was closed. Live sources
(cameras, streams) never end on their own: they reconnect with a back-off when the
device or stream drops. ``create_source(spec, fps)`` picks the adapter from the spec.

A folder is normally a camera's recording (frames of one scene); with ``stills`` it is a
set of separate photos, one item each (``Frame.whole_item``), played once.

Pacing: a folder is played at ``fps`` (default 5) and a video file at ``fps`` or its own
frame rate, in real time, so a recorded scene behaves like a camera. For live sources
``fps`` caps the rate: frames in between are grabbed and dropped, keeping latency low.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from whichbin.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
DEFAULT_FOLDER_FPS = 5.0


@dataclass(frozen=True)
class Frame:
    """One RGB uint8 HxWx3 image and when it was taken (seconds, source clock).

    ``captured`` is the local monotonic clock when the frame was read, for latency figures.
    ``whole_item``: the frame is one item as it is (a still photo, ``--stills``): it is
    classified whole and decided at once, without presence detection.
    """

    image: np.ndarray
    ts: float
    index: int = 0
    captured: float = field(default_factory=time.monotonic)
    whole_item: bool = False


class FrameSource(Protocol):
    """Cameras and streams also have ``live = True`` (they never end; they reconnect)."""

    def read(self) -> Frame | None:
        """The next frame, or None when the source has ended or was closed."""
        ...

    def close(self) -> None:
        """Release the device; a blocked or later ``read`` returns None."""
        ...


class _Pacer:
    """Sleeps so that frame ``i`` is returned no earlier than ``start + i / fps``."""

    def __init__(self, fps: float | None, closed: threading.Event) -> None:
        self.period = 1.0 / fps if fps and fps > 0 else 0.0
        self.closed = closed
        self.start: float | None = None

    def wait(self, i: int) -> None:
        if not self.period:
            return
        now = time.monotonic()
        if self.start is None or now - (self.start + i * self.period) > 1.0:
            self.start = now - i * self.period  # first frame, or fell far behind: re-anchor
        delay = self.start + i * self.period - now
        if delay > 0:
            self.closed.wait(delay)


class FolderSource:
    """Images in a folder (sorted by name) played as frames at ``fps``.

    With ``loop`` the folder replays from the start at its end (a kiosk demo); otherwise
    ``read`` returns None after the last image. Unreadable files are logged and skipped.
    With ``stills`` each image is one item (``Frame.whole_item``), not a camera frame.
    """

    def __init__(
        self, folder: Path, fps: float | None = None, loop: bool = False, stills: bool = False
    ) -> None:
        self.folder = Path(folder)
        self.files = sorted(
            p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self.files:
            raise DataError(f"{self.folder}: no images to play (expected {sorted(IMAGE_SUFFIXES)})")
        self.fps = fps or DEFAULT_FOLDER_FPS
        self.loop = loop
        self.stills = stills
        self.live = False
        self._closed = threading.Event()
        self._pacer = _Pacer(self.fps, self._closed)
        self._i = 0  # frames returned

    def read(self) -> Frame | None:
        from whichbin.imageio import load_rgb

        while not self._closed.is_set():
            pos = self._i % len(self.files) if self.loop else self._i
            if pos >= len(self.files):
                return None
            path = self.files[pos]
            self._pacer.wait(self._i)
            self._i += 1
            try:
                image = np.asarray(load_rgb(path))
            except DataError as e:  # a bad file must not stop the stream
                logger.warning("skipped: %s", e)
                continue
            return Frame(image, (self._i - 1) / self.fps, self._i - 1, whole_item=self.stills)
        return None

    def close(self) -> None:
        self._closed.set()


class CaptureSource:
    """cv2.VideoCapture over a camera index, device path, stream URL or video file.

    ``live`` sources (cameras, streams) reconnect with a back-off when reads fail and cap
    the rate at ``fps``; files end (or, with ``loop``, rewind) and are paced at ``fps`` or
    their own frame rate.
    """

    def __init__(
        self,
        target: int | str,
        fps: float | None = None,
        live: bool = True,
        loop: bool = False,
        opener: Callable[[int | str], Any] | None = None,
    ) -> None:
        self.target = target
        self.live = live
        self.loop = loop
        self._opener = opener or _open_capture
        self._closed = threading.Event()
        self._busy = threading.Lock()  # held while reading
        self._cap: Any = None
        self._i = 0
        self._next_due = 0.0
        self._backoff = 0.5
        self._open()
        if self._cap is None and not live:
            raise DataError(f"{target}: OpenCV cannot open this video file")
        native = self._cap.get(_cv2().CAP_PROP_FPS) if self._cap is not None else 0.0
        self.fps = fps or (None if live else (native if native and native < 1000 else 25.0))
        self._pacer = _Pacer(None if live else self.fps, self._closed)

    def _open(self) -> None:
        cap = self._opener(self.target)
        if cap is None or not cap.isOpened():
            logger.warning("cannot open video source %s", self.target)
            self._cap = None
            return
        self._cap = cap
        self._backoff = 0.5

    def read(self) -> Frame | None:
        # Only the reading thread touches the capture; close() from another thread (or a
        # signal handler) just flags it, and the capture is released here.
        with self._busy:
            try:
                return self._read()
            finally:
                if self._closed.is_set():
                    self._release()

    def _read(self) -> Frame | None:
        while not self._closed.is_set():
            if self._cap is None:
                self._closed.wait(self._backoff)
                self._backoff = min(self._backoff * 2, 30.0)
                if not self._closed.is_set():
                    self._open()
                continue
            frame = self._read_file() if not self.live else self._read_live()
            if frame is not None or not self.live:
                return frame
        return None

    def _read_file(self) -> Frame | None:
        ok, bgr = self._cap.read()
        if not ok and self.loop and self._i > 0:
            self._cap.set(_cv2().CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
        if not ok:
            return None
        self._pacer.wait(self._i)
        self._i += 1
        return Frame(_to_rgb(bgr), (self._i - 1) / (self.fps or 25.0), self._i - 1)

    def _read_live(self) -> Frame | None:
        # grab() without decoding drops frames cheaply until the next one is due.
        period = 1.0 / self.fps if self.fps else 0.0
        while not self._closed.is_set():
            if not self._cap.grab():
                logger.warning(
                    "video source %s stopped delivering frames; reconnecting", self.target
                )
                self._release()
                return None
            now = time.monotonic()
            if now >= self._next_due:
                ok, bgr = self._cap.retrieve()
                if not ok:
                    continue
                self._next_due = now + period
                self._i += 1
                return Frame(_to_rgb(bgr), now, self._i - 1)
        return None

    def _release(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def close(self) -> None:
        self._closed.set()
        if self._busy.acquire(blocking=False):  # nobody is reading: release now
            try:
                self._release()
            finally:
                self._busy.release()


def _cv2() -> Any:
    import cv2

    return cv2


def _open_capture(target: int | str) -> Any:
    return _cv2().VideoCapture(target)


def _to_rgb(bgr: np.ndarray) -> np.ndarray:
    if bgr.ndim == 2:
        return np.repeat(bgr[..., None], 3, axis=2)
    return np.ascontiguousarray(bgr[..., 2::-1])


def create_source(
    spec: str, fps: float | None = None, loop: bool = False, stills: bool = False
) -> FrameSource:
    """A frame source from a ``--source`` value.

    Args:
        spec: ``0`` (camera index), ``/dev/video0`` (device path), ``rtsp://…``/``http://…``
            (stream), a video file, or a folder of images.
        fps: playback rate for folders and files; a rate cap for cameras and streams.
        loop: replay a folder or video file from the start when it ends.
        stills: the folder's photos are separate items, one event each (played once).

    Raises:
        ConfigError: the spec is none of the above, or ``stills`` without a folder (the
            message names it).
    """
    spec = spec.strip()
    if fps is not None and fps <= 0:
        raise ConfigError(f"--fps {fps}: must be above 0")
    if stills:
        folder = Path(spec).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"--source {spec!r}: --stills plays a folder of photos; not a folder")
        return FolderSource(folder, fps, loop=False, stills=True)
    if spec.isdigit():
        return CaptureSource(int(spec), fps, live=True)
    if spec.lower().startswith(STREAM_SCHEMES):
        return CaptureSource(spec, fps, live=True)
    path = Path(spec).expanduser()
    if path.is_dir():
        return FolderSource(path, fps, loop=loop)
    if str(path).startswith("/dev/"):
        return CaptureSource(str(path), fps, live=True)
    if path.is_file():
        return CaptureSource(str(path), fps, live=False, loop=loop)
    raise ConfigError(
        f"--source {spec!r}: not a camera index, device, stream URL, video file or folder"
    )
