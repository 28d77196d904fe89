"""Recorded "drop" sequences: photos put down on a counter, a table or into a bin.

A sequence is a list of RGB frames: the empty scene, then for each item the photo
sliding in from above (moving frames), resting still, sliding out sideways, and an
empty gap; the whole picture's brightness drifts slowly (a sine) all along, as daylight
does. Backgrounds are generated (``counter``, ``table``, ``bin``), so no image is
copied anywhere. ``write_video`` records a sequence as an MJPEG ``.avi`` that the real
video-file source plays back. ``pick_photos`` chooses photos a model recognises, so a
test or benchmark of the edge pipeline (presence, vote, events) does not measure the
model's accuracy. The edge tests and ``bench/edge_*.py`` build their scenes here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SIZE = (320, 240)  # width, height
ROI = (0.2, 0.2, 0.8, 0.8)  # where the fixed-size items are put down by default
BACKGROUNDS = ("counter", "table", "bin")
# Label folders of the shared images (../shared/data) per bin, in the order tried.
BIN_FOLDERS = {
    "compost": ["extra/organic"],
    "landfill": ["trashnet/trash", "extra/textile"],
    "recycling": ["trashnet/plastic", "trashnet/glass", "trashnet/metal"],
}


def _blocks(rng: np.random.Generator, h: int, w: int, cell: int, sd: float) -> np.ndarray:
    """A blocky noise texture (HxWx1): ``cell``-pixel squares of normal noise."""
    small = rng.normal(0, sd, (h // cell + 1, w // cell + 1, 1)).astype(np.float32)
    return np.kron(small, np.ones((cell, cell, 1), np.float32))[:h, :w]


def counter(seed: int = 0, size: tuple[int, int] = SIZE) -> np.ndarray:
    """The empty counter: a warm grey gradient with a fixed texture (float32, HxWx3)."""
    w, h = size
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 30, w, dtype=np.float32)[None, :, None]
    base = np.array([150, 140, 125], np.float32)[None, None, :] + ramp
    texture = _blocks(rng, h, w, max(2, w // 40), 6.0)
    return np.broadcast_to(base, (h, w, 3)) + texture


def table(seed: int = 0, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A wooden table top: brown planks with wavy grain (float32, HxWx3)."""
    w, h = size
    rng = np.random.default_rng(seed)
    y = np.arange(h, dtype=np.float32)[:, None]
    x = np.arange(w, dtype=np.float32)[None, :]
    wobble = 6.0 * np.sin(x / (w / 3.0) + rng.uniform(0, 6.28))
    grain = np.sin((y + wobble) / max(1.5, h / 60.0)) * 10.0
    planks = (y // max(8, h // 5)) % 2 * 12.0
    base = np.array([156, 108, 66], np.float32)[None, None, :]
    shade = (grain + planks)[..., None]
    return base + shade * np.array([1.0, 0.8, 0.6], np.float32) + _blocks(rng, h, w, 4, 3.0)


def bin_interior(seed: int = 0, size: tuple[int, int] = SIZE) -> np.ndarray:
    """The inside of a bin: a dark bag with wrinkles, darker towards the walls (float32)."""
    w, h = size
    rng = np.random.default_rng(seed)
    y = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    vignette = 1.0 - 0.45 * np.clip(x * x + y * y, 0, 1.6)
    wrinkles = _blocks(rng, h, w, max(3, w // 24), 14.0)[..., 0]
    grey = (58.0 + wrinkles) * vignette
    tint = np.array([1.0, 1.05, 1.12], np.float32)
    return grey[..., None] * tint[None, None, :]


def background(kind: str, seed: int = 0, size: tuple[int, int] = SIZE) -> np.ndarray:
    """One of ``BACKGROUNDS`` as a float32 HxWx3 image."""
    makers = {"counter": counter, "table": table, "bin": bin_interior}
    if kind not in makers:
        raise ValueError(f"background {kind!r}: expected one of {sorted(makers)}")
    return np.ascontiguousarray(makers[kind](seed, size), np.float32)


def load_item(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A photo resized to ``size`` (width, height) as float32 RGB."""
    from PIL import Image

    from whichbin.imageio import load_rgb

    return np.asarray(load_rgb(path).resize(size, Image.Resampling.BILINEAR), np.float32)


def photo_size(path: Path) -> tuple[int, int]:
    """Width and height of an image file."""
    from whichbin.imageio import open_image

    with open_image(path) as im:
        return im.size


def item_size(photo: tuple[int, int], area: float, size: tuple[int, int] = SIZE) -> tuple[int, int]:
    """The on-screen size (w, h) of a photo covering ``area`` of the frame, aspect kept."""
    pw, ph = photo
    w, h = size
    scale = math.sqrt(area * w * h / (pw * ph))
    scale = min(scale, w / pw, h / ph)  # it must fit in the frame
    return max(2, int(round(pw * scale))), max(2, int(round(ph * scale)))


@dataclass
class Sequence:
    frames: list[np.ndarray]
    items: list[tuple[int, int, str]]  # (first frame, last frame, bin) of each item's visit
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # resting x0,y0,x1,y1


class SequenceBuilder:
    """Builds a drop sequence frame by frame (deterministic for a seed).

    Args:
        seed: the background texture, sensor noise and placement.
        drift: amplitude (grey levels) of the slow brightness drift.
        period: frames per drift cycle.
        size: frame width and height.
        scene: the background, one of ``BACKGROUNDS``.
    """

    def __init__(
        self,
        seed: int = 0,
        drift: float = 15.0,
        period: int = 200,
        size: tuple[int, int] = SIZE,
        scene: str = "counter",
    ) -> None:
        self.size = size
        self.item_size = (size[0] // 2, size[1] // 2)
        self.background = background(scene, seed, size)
        self.rng = np.random.default_rng(seed + 1)
        self.drift, self.period = drift, period
        # A pool of sensor-noise frames: drawing fresh noise per frame costs more than the rest.
        w, h = size
        self._noise = [self.rng.normal(0, 3, (h, w, 3)).astype(np.float32) for _ in range(8)]
        self.frames: list[np.ndarray] = []
        self.items: list[tuple[int, int, str]] = []
        self.boxes: list[tuple[int, int, int, int]] = []

    def _frame(self, item: np.ndarray | None = None, x0: int = 0, y0: int = 0) -> None:
        w, h = self.size
        arr = self.background.copy()
        if item is not None:
            ih, iw = item.shape[:2]
            xa, ya = max(0, x0), max(0, y0)
            xb, yb = min(w, x0 + iw), min(h, y0 + ih)
            if xb > xa and yb > ya:
                arr[ya:yb, xa:xb] = item[ya - y0 : yb - y0, xa - x0 : xb - x0]
        t = len(self.frames)
        arr += self.drift * math.sin(2 * math.pi * t / self.period)  # light drifts
        arr += self._noise[int(self.rng.integers(len(self._noise)))]  # sensor noise
        self.frames.append(np.clip(arr, 0, 255).astype(np.uint8))

    def empty(self, n: int) -> SequenceBuilder:
        for _ in range(n):
            self._frame()
        return self

    def drop(
        self,
        photo: Path,
        bin_: str,
        rest: int = 10,
        gap: int = 8,
        *,
        area: float | None = None,
        center: tuple[float, float] | None = None,
    ) -> SequenceBuilder:
        """Slide a photo in from above, let it rest, slide it out to the right, then a gap.

        Args:
            area: fraction of the frame the photo covers (aspect kept); default: half the
                frame's width and height (photo stretched to it).
            center: where it rests, as fractions of the frame; default: the middle.
        """
        w, h = self.size
        size = self.item_size if area is None else item_size(photo_size(photo), area, self.size)
        item = load_item(photo, size)
        iw, ih = size
        cx, cy = center if center is not None else (0.5, 0.5)
        x0 = int(round(min(max(cx * w - iw / 2, 0), w - iw)))
        y0 = int(round(min(max(cy * h - ih / 2, 0), h - ih)))
        first = len(self.frames)
        for f in (-0.62, -0.38, -0.17, -0.04):  # from above, as a fraction of the height
            self._frame(item, x0, y0 + int(f * h))
        for _ in range(rest):
            self._frame(item, x0, y0)
        for f in (0.19, 0.44, 0.72):  # out to the right
            self._frame(item, x0 + int(f * w), y0)
        self.items.append((first, len(self.frames) - 1, bin_))
        self.boxes.append((x0, y0, x0 + iw, y0 + ih))
        return self.empty(gap)

    def build(self) -> Sequence:
        return Sequence(self.frames, self.items, self.boxes)


def drop_sequence(
    photos: dict[str, list[Path]],
    items: int,
    *,
    seed: int = 0,
    size: tuple[int, int] = SIZE,
    rest: int = 12,
    gap: int = 10,
) -> tuple[Sequence, list[str]]:
    """A recording of ``items`` drops, the bins in turn and each bin's photos in turn,
    between 15 empty frames at the start and 10 at the end; also the bins in order."""
    order = [b for _ in range(items) for b in photos][:items]
    used = {b: iter(ps * items) for b, ps in photos.items()}
    builder = SequenceBuilder(seed=seed, size=size).empty(15)
    for b in order:
        builder.drop(next(used[b]), b, rest=rest, gap=gap)
    return builder.empty(10).build(), order


def pick_photos(
    shared: Path,
    classifier: Any,
    per_bin: int = 2,
    min_confidence: float = 0.8,
    limit: int = 40,
    size: tuple[int, int] = SIZE,
) -> dict[str, list[Path]]:
    """Per bin, the first photos ``classifier`` gets right with confidence on the counter,
    as the edge sees them (the item's crop with the default margin, squared up).

    Args:
        shared: the shared images (``BIN_FOLDERS`` below it).
        classifier: has ``predict(images) -> [Prediction]`` (an OnnxClassifier).
        limit: photos tried per folder.

    Raises:
        LookupError: fewer than ``per_bin`` photos of a bin qualify.
    """
    from whichbin.config import PresenceConfig
    from whichbin.edge.region import crop_box

    margin = PresenceConfig().crop_margin
    out: dict[str, list[Path]] = {}
    for bin_, folders in BIN_FOLDERS.items():
        chosen: list[Path] = []
        candidates = [p for f in folders for p in sorted((shared / f).glob("*.jpg"))[:limit]]
        for photo in candidates:
            b = SequenceBuilder(seed=7, size=size)
            iw, ih = b.item_size
            x0, y0 = (size[0] - iw) // 2, (size[1] - ih) // 2
            b._frame(load_item(photo, b.item_size), x0, y0)
            box = crop_box((x0, y0, x0 + iw, y0 + ih), b.frames[0].shape, margin)
            pred = classifier.predict([b.frames[0][box[1] : box[3], box[0] : box[2]]])[0]
            if pred.bin == bin_ and pred.confidence >= min_confidence:
                chosen.append(photo)
                if len(chosen) == per_bin:
                    break
        if len(chosen) < per_bin:
            raise LookupError(f"fewer than {per_bin} {bin_} photos the model recognises")
        out[bin_] = chosen
    return out


def write_video(frames: list[np.ndarray], path: Path, fps: float = 30.0) -> Path:
    """Record RGB frames as an MJPEG .avi (what a camera recording would be)."""
    import cv2

    h, w = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*"MJPG")  # type: ignore[attr-defined]
    writer = cv2.VideoWriter(str(path), fourcc, fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"cv2 cannot write {path}")
    for f in frames:
        writer.write(np.ascontiguousarray(f[..., ::-1]))
    writer.release()
    return path
