"""Recorded "drop" sequences: real photos put down on a counter, under drifting light.

A sequence is a list of RGB frames: the empty counter, then for each item the photo
sliding in from above (moving frames), resting still, sliding out sideways, and an
empty gap; the whole picture's brightness drifts slowly (a sine) all along, as daylight
does. ``write_video`` records it as an MJPEG ``.avi`` that the real video-file source
plays back. The benchmarks in ``bench/edge_*.py`` use the same sequences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (320, 240)  # width, height
ITEM = (160, 120)  # the photo's size on the counter: half the width and height
ROI = (0.2, 0.2, 0.8, 0.8)  # where items are put down (what the classifier sees)
# Label folders of ../shared/data per bin, in the order tried.
BIN_FOLDERS = {
    "compost": ["extra/organic"],
    "landfill": ["trashnet/trash", "extra/textile"],
    "recycling": ["trashnet/plastic", "trashnet/glass", "trashnet/metal"],
}


def counter(seed: int = 0, size: tuple[int, int] = SIZE) -> np.ndarray:
    """The empty counter: a warm grey gradient with a fixed texture (float32, HxWx3)."""
    w, h = size
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 30, w, dtype=np.float32)[None, :, None]
    base = np.array([150, 140, 125], np.float32)[None, None, :] + ramp
    texture = rng.normal(0, 6, (h // 8, w // 8, 1)).astype(np.float32)
    texture = np.kron(texture, np.ones((8, 8, 1), np.float32))
    return np.broadcast_to(base, (h, w, 3)) + texture


def load_item(path: Path, size: tuple[int, int] = ITEM) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize(size, Image.Resampling.BILINEAR), np.float32)


@dataclass
class Sequence:
    frames: list[np.ndarray]
    items: list[tuple[int, int, str]]  # (first frame, last frame, bin) of each item's visit


class SequenceBuilder:
    """Builds a drop sequence frame by frame (deterministic for a seed)."""

    def __init__(
        self,
        seed: int = 0,
        drift: float = 15.0,
        period: int = 200,
        size: tuple[int, int] = SIZE,
    ) -> None:
        self.size = size
        self.item_size = (size[0] // 2, size[1] // 2)
        self.background = counter(seed, size)
        self.rng = np.random.default_rng(seed + 1)
        self.drift, self.period = drift, period
        self.frames: list[np.ndarray] = []
        self.items: list[tuple[int, int, str]] = []

    def _frame(self, item: np.ndarray | None = None, dx: int = 0, dy: int = 0) -> None:
        w, h = self.size
        iw, ih = self.item_size
        arr = self.background.copy()
        if item is not None:
            x0 = (w - iw) // 2 + dx
            y0 = (h - ih) // 2 + dy
            xa, ya = max(0, x0), max(0, y0)
            xb, yb = min(w, x0 + iw), min(h, y0 + ih)
            if xb > xa and yb > ya:
                arr[ya:yb, xa:xb] = item[ya - y0 : yb - y0, xa - x0 : xb - x0]
        t = len(self.frames)
        arr += self.drift * math.sin(2 * math.pi * t / self.period)  # light drifts
        arr += self.rng.normal(0, 3, arr.shape).astype(np.float32)  # sensor noise
        self.frames.append(np.clip(arr, 0, 255).astype(np.uint8))

    def empty(self, n: int) -> SequenceBuilder:
        for _ in range(n):
            self._frame()
        return self

    def drop(self, photo: Path, bin_: str, rest: int = 10, gap: int = 8) -> SequenceBuilder:
        """Slide a photo in from above, let it rest, slide it out to the right, then a gap."""
        item = load_item(photo, self.item_size)
        first = len(self.frames)
        w, h = self.size
        for f in (-0.62, -0.38, -0.17, -0.04):  # from above, as a fraction of the height
            self._frame(item, dy=int(f * h))
        for _ in range(rest):
            self._frame(item)
        for f in (0.19, 0.44, 0.72):  # out to the right
            self._frame(item, dx=int(f * w))
        self.items.append((first, len(self.frames) - 1, bin_))
        return self.empty(gap)

    def build(self) -> Sequence:
        return Sequence(self.frames, self.items)


def write_video(frames: list[np.ndarray], path: Path, fps: float = 30.0) -> Path:
    """Record RGB frames as an MJPEG .avi (what a camera recording would be)."""
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"cv2 cannot write {path}")
    for f in frames:
        writer.write(np.ascontiguousarray(f[..., ::-1]))
    writer.release()
    return path


def pick_photos(
    shared: Path,
    classifier,  # noqa: ANN001
    per_bin: int = 2,
    min_confidence: float = 0.8,
    limit: int = 40,
    size: tuple[int, int] = SIZE,
) -> dict[str, list[Path]]:
    """Per bin, the first photos the model gets right with confidence when on the counter.

    The tests check the edge pipeline (presence, vote, events), not the model's accuracy,
    so they use items the model recognises; ``pipeline`` benchmarks measure accuracy.
    """
    out: dict[str, list[Path]] = {}
    for bin_, folders in BIN_FOLDERS.items():
        chosen: list[Path] = []
        candidates = [p for f in folders for p in sorted((shared / f).glob("*.jpg"))[:limit]]
        for photo in candidates:
            b = SequenceBuilder(seed=7, size=size)
            b._frame(load_item(photo, b.item_size))
            x0, y0 = int(ROI[0] * size[0]), int(ROI[1] * size[1])
            x1, y1 = int(ROI[2] * size[0]), int(ROI[3] * size[1])
            pred = classifier.predict([b.frames[0][y0:y1, x0:x1]])[0]
            if pred.bin == bin_ and pred.confidence >= min_confidence:
                chosen.append(photo)
                if len(chosen) == per_bin:
                    break
        if len(chosen) < per_bin:
            raise LookupError(f"fewer than {per_bin} {bin_} photos the model recognises")
        out[bin_] = chosen
    return out
