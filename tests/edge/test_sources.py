"""Frame sources over real files: folders of images and a video file."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.edge.scenes import scene_frame
from tests.helpers import COLORS, solid_image
from whichbin.edge.sources import CaptureSource, FolderSource, create_source
from whichbin.errors import ConfigError, DataError


def test_folder_plays_sorted_rgb_frames_and_skips_bad_files(tmp_path: Path) -> None:
    solid_image(tmp_path / "b.jpg", COLORS["compost"])
    solid_image(tmp_path / "a.jpg", COLORS["landfill"])
    (tmp_path / "c.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    src = create_source(str(tmp_path), fps=200)
    assert isinstance(src, FolderSource)
    frames = [src.read(), src.read(), src.read()]
    assert frames[2] is None
    a, b = frames[0], frames[1]
    assert a is not None and b is not None
    assert a.image.dtype == np.uint8 and a.image.shape == (72, 96, 3)
    assert a.image[..., 0].mean() > 150  # red first: sorted by name, RGB order
    assert b.image[..., 1].mean() > 150
    assert (a.index, b.index) == (0, 1)
    assert b.ts == pytest.approx(1 / 200)


def test_folder_is_paced_at_fps_and_loops(tmp_path: Path) -> None:
    for i in range(3):
        solid_image(tmp_path / f"{i}.jpg", COLORS["recycling"])
    src = FolderSource(tmp_path, fps=20, loop=True)
    t0 = time.monotonic()
    frames = [src.read() for _ in range(7)]
    elapsed = time.monotonic() - t0
    assert all(f is not None for f in frames)
    assert elapsed >= 6 / 20 * 0.9
    src.close()
    assert src.read() is None


def test_video_file_is_read_as_rgb_frames(tmp_path: Path) -> None:
    import cv2

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (96, 72))
    assert writer.isOpened()
    for i in range(5):
        rgb = scene_frame(COLORS["landfill"] if i >= 2 else None, i)
        writer.write(np.ascontiguousarray(rgb[..., ::-1]))
    writer.release()
    src = create_source(str(path), fps=500)
    assert isinstance(src, CaptureSource) and not src.live
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    assert len(frames) == 5
    last = frames[-1].image
    assert last.shape == (72, 96, 3)
    assert last[36, 48, 0] > 150 and last[36, 48, 2] < 100  # red, in RGB order


def test_unknown_source_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nowhere"):
        create_source(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="no images"):
        create_source(str(tmp_path))
    with pytest.raises(ConfigError, match="--fps"):
        create_source("0", fps=0)


class FakeCamera:
    """Stands in for camera hardware: delivers ``frames`` frames, then the device drops."""

    def __init__(self, frames: int) -> None:
        self.left = frames
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802 - cv2's name
        return True

    def get(self, prop: int) -> float:
        return 30.0

    def grab(self) -> bool:
        self.left -= 1
        return self.left >= 0

    def retrieve(self) -> tuple[bool, np.ndarray]:
        bgr = np.zeros((4, 6, 3), np.uint8)
        bgr[..., 0] = 255  # blue in BGR
        return True, bgr

    def release(self) -> None:
        self.released = True


def test_live_source_reconnects_after_the_device_drops() -> None:
    opened: list[FakeCamera] = []

    def opener(target: int | str) -> FakeCamera:
        opened.append(FakeCamera(2))
        return opened[-1]

    src = CaptureSource(0, opener=opener)
    src._backoff = 0.01  # the first reconnect comes quickly in a test
    frames = [src.read() for _ in range(4)]
    assert all(f is not None for f in frames)
    assert frames[0].image[0, 0].tolist() == [0, 0, 255]  # RGB
    assert len(opened) == 2 and opened[0].released
    src.close()
    assert src.read() is None and opened[-1].released
