"""Is an item in front of the camera? A change detector against the empty scene. Pure numpy.

Each frame is cropped to the region of interest (``roi``, fractions of the frame) and
reduced to a small colour image (area averaging, which also removes sensor noise). The
first ``learn_frames`` consecutive *still* frames are averaged into a background model
of the empty scene (frames that keep changing, such as a folder of unrelated photos,
teach nothing: ``learning`` stays true, and the runner says so in the log); afterwards
the background is re-learned slowly (a running average with rate ``alpha``) while, and
only while, the scene is empty, so slow lighting drift is absorbed but an item is never
learned into the background.

A pixel has changed when one of its colour channels differs from the background by more
than ``pixel_threshold`` levels, after removing the shift most pixels share, per channel
(``compensate_lighting``: a light switched on shifts every pixel alike, an item shifts
only its own; ``lighting_shift``). Colour matters: a brown box on a grey counter can
have the counter's brightness. Changed pixels with fewer than two changed neighbours are
noise and dropped; the rest grow over the connected pixels changed by half the threshold
(hysteresis, as in edge detection: an item's low-contrast parts count, a faint shadow
alone does not); a frame has changed when more than ``changed_fraction`` of its pixels
have. A frame is still when fewer than ``still_fraction`` of its pixels moved since the
previous frame.

Where the item is: ``item_box()`` is the bounding box of the changed pixels' connected
blobs (8-connected; blobs under a tenth of the largest one, or under ``min_blob`` of the
region, are dropped), in fractions of the full frame.
``item_views()`` cuts the item out of the full-resolution frame with a margin
(``crop_margin`` of the box's longer side on every side), squared up (``crop_square``),
so the classifier sees the item, not the counter; ``extra_crop_margins`` adds crops
that vote with it. ``crop = False`` gives the region of interest instead, as before.

An item is present after ``enter_frames`` consecutive changed *and still* frames (it was
put down and the hand has gone), and gone after ``exit_frames`` consecutive frames that
match the background again (hysteresis, so a flicker is no item and a hand is no exit).

A scene that stays changed and still for ``absorb_frames`` frames (a moved bin, an item
left behind) is taken as the new background and the item counts as gone; the old
background is remembered, so when the thing is taken away again the scene is recognised
as empty at once instead of reading as an item.

Known limits (documented rather than hidden): an item whose brightness and colour equal
the background's is missed; an item already in view while the background is learned
becomes part of it (send ``reload`` to re-learn); a flat-coloured item larger than half
the region of interest is taken for the lighting (it is still detected, by the uncovered
part, but its crop is the whole region).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from whichbin.config.edge import FULL_FRAME, Box, PresenceConfig
from whichbin.edge.region import blob_box, crop_box, denoise, grow, lighting_shift

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
WEAK_FACTOR = 0.5  # changed blobs grow over their neighbours changed by half the threshold


@dataclass(frozen=True)
class PresenceUpdate:
    """What one frame told the detector."""

    present: bool  # an item is in view (after hysteresis)
    entered: bool  # it arrived with this frame
    left: bool  # it left with this frame
    changed: float  # fraction of pixels that differ from the background (0 while learning)
    learning: bool  # the initial background is still being learned
    motion: float = 0.0  # fraction of pixels that moved since the previous frame
    still: bool = True  # motion below ``still_fraction``
    absorbed: bool = False  # the scene was taken as the new background with this frame


def roi_box(shape: tuple[int, ...], roi: Box) -> tuple[int, ...]:
    """The ROI in pixels ``(x0, y0, x1, y1)`` for an image of ``shape`` (H, W, ...)."""
    h, w = shape[0], shape[1]
    x0, y0, x1, y1 = roi
    px0, py0 = int(round(x0 * w)), int(round(y0 * h))
    px1, py1 = max(px0 + 1, int(round(x1 * w))), max(py0 + 1, int(round(y1 * h)))
    return px0, py0, min(px1, w), min(py1, h)


def crop_roi(image: np.ndarray, roi: Box) -> np.ndarray:
    """The region of interest of an image (a view, no copy); the image itself when full."""
    if tuple(roi) == FULL_FRAME:
        return image
    x0, y0, x1, y1 = roi_box(image.shape, roi)
    return image[y0:y1, x0:x1]


def _downscale(image: np.ndarray, width: int, grey: bool) -> tuple[np.ndarray, int]:
    """Area-average an image down to about ``width`` pixels; also the block size in pixels.

    Large frames are first subsampled with a stride (a view, no copy), so a 1280x720 camera
    frame costs about as much as a 256x144 one.
    """
    h, w = image.shape[:2]
    stride = max(1, w // (width * 4))
    if stride > 1:
        image = image[::stride, ::stride]
    small = image.astype(np.float32)
    if small.ndim == 2:
        small = small[..., None]
    small = small[..., :3] @ _LUMA[:, None] if grey and small.shape[2] >= 3 else small
    h, w = small.shape[:2]
    factor = max(1, w // width)
    hh, ww = (h // factor) * factor, (w // factor) * factor
    if hh == 0 or ww == 0:
        return small, stride
    blocks = small[:hh, :ww].reshape(hh // factor, factor, ww // factor, factor, -1)
    return blocks.mean(axis=(1, 3)), stride * factor


def downscale_grey(image: np.ndarray, width: int) -> np.ndarray:
    """RGB (or grey) uint8 HxW[x3] → small float32 greyscale by area averaging."""
    return _downscale(image, width, grey=True)[0][..., 0]


class PresenceDetector:
    """Tells, frame by frame, whether an item is in view and where (see the module docstring)."""

    def __init__(self, config: PresenceConfig | None = None) -> None:
        """``config``: the ``edge.presence`` section (default: its defaults)."""
        self.config = config or PresenceConfig()
        self.reset()

    def reset(self) -> None:
        """Forget the background and start learning again."""
        self._background: np.ndarray | None = None
        self._previous_background: np.ndarray | None = None
        self._last: np.ndarray | None = None
        self._learned = 0
        self._still_run = 0  # consecutive changed and still frames
        self._quiet_run = 0  # consecutive background frames
        self._present = False
        self._mask: np.ndarray | None = None  # the latest frame's changed pixels
        self._block = 1  # pixels of the region per small-image cell
        self._frame_shape: tuple[int, ...] = ()

    @property
    def present(self) -> bool:
        return self._present

    @property
    def learned(self) -> bool:
        """An empty scene has been learned as the background."""
        return self._background is not None and self._learned >= self.config.learn_frames

    @property
    def background(self) -> np.ndarray | None:
        """The current background model (small, colour), for inspection."""
        return self._background

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The part of a frame the detector watches."""
        return crop_roi(image, self.config.roi)

    def update(self, image: np.ndarray) -> PresenceUpdate:
        """Feed one RGB uint8 frame; returns the presence after it."""
        cfg = self.config
        small, block = _downscale(self.crop(image), cfg.width, grey=False)
        if self._background is not None and self._background.shape != small.shape:
            self.reset()  # the camera changed resolution: the old background means nothing
        self._block, self._frame_shape = block, image.shape
        last, self._last = self._last, small
        motion = float(np.mean(self._changed(small, last))) if last is not None else 1.0
        still = motion < cfg.still_fraction
        if not self.learned:
            self._learn_initial(small, still)
            self._mask = None
            return PresenceUpdate(False, False, False, 0.0, True, motion, still)
        assert self._background is not None

        self._mask = self._changed_cells(small, self._background)
        changed = float(np.mean(self._mask))
        is_changed = changed > cfg.changed_fraction
        if (
            is_changed
            and self._previous_background is not None
            and np.mean(self._changed_cells(small, self._previous_background))
            <= cfg.changed_fraction
        ):
            # The thing absorbed into the background was taken away: the old empty scene.
            self._background, self._previous_background = self._previous_background, None
            self._mask = self._changed_cells(small, self._background)
            changed = float(np.mean(self._mask))
            is_changed = changed > cfg.changed_fraction
        entered = left = absorbed = False
        if is_changed:
            self._quiet_run = 0
            self._still_run = self._still_run + 1 if still else 0
            if not self._present and self._still_run >= cfg.enter_frames:
                self._present = entered = True
            elif cfg.absorb_frames and self._still_run >= cfg.absorb_frames:
                absorbed = True
                left = self._present
                self._present = False
                self._previous_background, self._background = self._background, small.copy()
                self._still_run = 0
        else:
            self._quiet_run += 1
            self._still_run = 0
            if self._present and self._quiet_run >= cfg.exit_frames:
                self._present = False
                left = True
            if not self._present:
                # Only a quiet, empty scene teaches the background.
                self._background += cfg.alpha * (small - self._background)
        return PresenceUpdate(self._present, entered, left, changed, False, motion, still, absorbed)

    def item_box(self) -> Box | None:
        """Where the latest frame differs from the empty scene, in fractions of the frame.

        None while learning or when nothing significant changed.
        """
        if self._mask is None or not self._frame_shape:
            return None
        min_cells = max(3, int(self.config.min_blob * self._mask.size))
        cells = blob_box(self._mask, min_cells)
        if cells is None:
            return None
        h, w = self._frame_shape[0], self._frame_shape[1]
        rx0, ry0, rx1, ry1 = roi_box(self._frame_shape, self.config.roi)
        b = self._block
        x0, y0 = rx0 + cells[0] * b, ry0 + cells[1] * b
        x1, y1 = min(rx1, rx0 + cells[2] * b), min(ry1, ry0 + cells[3] * b)
        return x0 / w, y0 / h, x1 / w, y1 / h

    def item_views(self, image: np.ndarray) -> list[np.ndarray]:
        """What the classifier should see of the latest frame (``image``): the item's crop
        for each margin, or the region of interest when cropping is off or nothing is found.
        """
        cfg = self.config
        box = self.item_box() if cfg.crop else None
        if box is None:
            return [self.crop(image)]
        h, w = image.shape[:2]
        pixels = (
            int(round(box[0] * w)),
            int(round(box[1] * h)),
            int(round(box[2] * w)),
            int(round(box[3] * h)),
        )
        views = []
        for margin in (cfg.crop_margin, *cfg.extra_crop_margins):
            x0, y0, x1, y1 = crop_box(pixels, image.shape, margin, cfg.crop_square)
            views.append(image[y0:y1, x0:x1])
        return views

    def _difference(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per cell, the largest channel difference (levels; lighting compensated)."""
        diff = a - b
        if self.config.compensate_lighting:
            diff = diff - lighting_shift(diff.reshape(-1, diff.shape[-1]))
        return np.asarray(np.abs(diff).max(axis=-1))

    def _changed(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cells where any channel differs by more than the threshold."""
        return self._difference(a, b) > self.config.pixel_threshold

    def _changed_cells(self, small: np.ndarray, background: np.ndarray) -> np.ndarray:
        """Cells changed against a background: noise removed, grown over their neighbours
        changed by at least half the threshold (an item's low-contrast parts)."""
        diff = self._difference(small, background)
        strong = denoise(diff > self.config.pixel_threshold)
        if not strong.any():
            return strong
        return grow(strong, denoise(diff > self.config.pixel_threshold * WEAK_FACTOR))

    def _learn_initial(self, small: np.ndarray, still: bool) -> None:
        if self._background is None or not still:
            # The first frame, or the scene moved: learning starts again from this frame.
            self._background = small.copy()
            self._learned = 1
            return
        self._learned += 1
        self._background += (small - self._background) / self._learned
