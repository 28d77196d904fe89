"""Synthetic scenes for the edge tests: an empty counter, then items put down and taken away."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import COLORS

BACKGROUND = (200, 200, 200)  # a light grey counter
SIZE = (96, 72)  # width, height


def scene_frame(
    item: tuple[int, int, int] | None,
    seed: int,
    background: tuple[int, int, int] = BACKGROUND,
    brightness: float = 0.0,
) -> np.ndarray:
    """One RGB frame: the background (plus a brightness offset) with an item over the middle."""
    w, h = SIZE
    rng = np.random.default_rng(seed)
    arr = np.empty((h, w, 3), np.float32)
    arr[:] = np.asarray(background, np.float32) + brightness
    if item is not None:
        # The item covers the central 80% x 80% of the view (64% of the pixels).
        y0, y1, x0, x1 = h // 10, h - h // 10, w // 10, w - w // 10
        arr[y0:y1, x0:x1] = item
    arr += rng.normal(0, 4, arr.shape)
    return np.clip(arr, 0, 255).astype(np.uint8)


def write_scene(
    folder: Path,
    bins: list[str],
    background_frames: int = 8,
    item_frames: int = 8,
    gap_frames: int = 6,
) -> Path:
    """A folder of JPEG frames: background, then per bin an item of its colour and a gap."""
    folder.mkdir(parents=True, exist_ok=True)
    frames: list[np.ndarray] = [scene_frame(None, i) for i in range(background_frames)]
    for b in bins:
        frames += [scene_frame(COLORS[b], len(frames) + i) for i in range(item_frames)]
        frames += [scene_frame(None, len(frames) + i) for i in range(gap_frames)]
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame_{i:04d}.jpg", quality=92)
    return folder
