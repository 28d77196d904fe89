"""Is an item in front of the camera? A change detector against the empty scene. Pure numpy.

Each frame is cropped to the region of interest (``roi``, fractions of the frame) and
reduced to a small greyscale image (area averaging, which also removes sensor noise).
The first ``learn_frames`` frames are averaged into a background model of the empty
scene; afterwards the background is re-learned slowly (a running average with rate
``alpha``) while, and only while, the scene is empty, so slow lighting drift is absorbed
but an item is never learned into the background.

A pixel has changed when it differs from the background by more than ``pixel_threshold``
grey levels, after removing the frame's median difference (``compensate_lighting``: a
light switched on shifts every pixel alike, an item shifts only its own); a frame has
changed when more than ``changed_fraction`` of its pixels have. A frame is still when
fewer than ``still_fraction`` of its pixels moved since the previous frame.

An item is present after ``enter_frames`` consecutive changed *and still* frames (it was
put down and the hand has gone), and gone after ``exit_frames`` consecutive frames that
match the background again (hysteresis, so a flicker is no item and a hand is no exit).

A scene that stays changed and still for ``absorb_frames`` frames (a moved bin, an item
left behind) is taken as the new background and the item counts as gone; the old
background is remembered, so when the thing is taken away again the scene is recognised
as empty at once instead of reading as an item.

Known limits (documented rather than hidden): greyscale misses an item whose brightness
equals the background's; an item already in view while the background is learned
becomes part of it (send ``reload`` to re-learn); an item larger than half the region of
interest weakens the lighting compensation (it is still detected, by the uncovered part).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
FULL_FRAME = (0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True)
class PresenceConfig:
    """Tuning of the change detector (defaults suit a fixed camera over a bin-side shelf)."""

    width: int = 64  # downscaled width in pixels (height keeps the aspect ratio)
    learn_frames: int = 5  # frames averaged into the initial background
    alpha: float = 0.05  # background learning rate while the scene is empty
    pixel_threshold: float = 25.0  # grey levels (0-255) for a pixel to count as changed
    changed_fraction: float = 0.10  # fraction of changed pixels for a frame to count
    still_fraction: float = 0.05  # at most this fraction moved since the last frame: still
    enter_frames: int = 2  # consecutive changed, still frames before an item is present
    exit_frames: int = 3  # consecutive background frames before it is gone
    absorb_frames: int = 900  # changed and still this long: the new background (0: never)
    compensate_lighting: bool = True  # remove the median difference (global light changes)
    roi: tuple[float, float, float, float] = FULL_FRAME  # x0, y0, x1, y1 as fractions

    def __post_init__(self) -> None:
        if self.width < 4:
            raise ValueError("width must be at least 4")
        if self.learn_frames < 1 or self.enter_frames < 1 or self.exit_frames < 1:
            raise ValueError("learn_frames, enter_frames and exit_frames must be at least 1")
        if self.absorb_frames < 0:
            raise ValueError("absorb_frames must be 0 (never) or more")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError("alpha must be within [0, 1]")
        if not 0.0 < self.changed_fraction < 1.0:
            raise ValueError("changed_fraction must be within (0, 1)")
        if not 0.0 < self.still_fraction <= 1.0:
            raise ValueError("still_fraction must be within (0, 1]")
        check_roi(self.roi)


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


def check_roi(roi: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Validate ``(x0, y0, x1, y1)`` fractions: inside [0, 1] and not empty."""
    if len(roi) != 4:
        raise ValueError("roi must be four numbers: x0, y0, x1, y1")
    x0, y0, x1, y1 = roi
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise ValueError("roi must satisfy 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
    return roi


def roi_box(shape: tuple[int, ...], roi: tuple[float, float, float, float]) -> tuple[int, ...]:
    """The ROI in pixels ``(x0, y0, x1, y1)`` for an image of ``shape`` (H, W, ...)."""
    h, w = shape[0], shape[1]
    x0, y0, x1, y1 = roi
    px0, py0 = int(round(x0 * w)), int(round(y0 * h))
    px1, py1 = max(px0 + 1, int(round(x1 * w))), max(py0 + 1, int(round(y1 * h)))
    return px0, py0, min(px1, w), min(py1, h)


def crop_roi(image: np.ndarray, roi: tuple[float, float, float, float]) -> np.ndarray:
    """The region of interest of an image (a view, no copy); the image itself when full."""
    if tuple(roi) == FULL_FRAME:
        return image
    x0, y0, x1, y1 = roi_box(image.shape, roi)
    return image[y0:y1, x0:x1]


def downscale_grey(image: np.ndarray, width: int) -> np.ndarray:
    """RGB (or grey) uint8 HxW[x3] → small float32 greyscale by area averaging.

    Large frames are first subsampled with a stride (a view, no copy), so a 1280x720 camera
    frame costs about as much as a 256x144 one.
    """
    h, w = image.shape[:2]
    stride = max(1, w // (width * 4))
    if stride > 1:
        image = image[::stride, ::stride]
    grey = image.astype(np.float32)
    if grey.ndim == 3:
        grey = grey[..., :3] @ _LUMA
    h, w = grey.shape
    factor = max(1, w // width)
    hh, ww = (h // factor) * factor, (w // factor) * factor
    if hh == 0 or ww == 0:
        return grey
    blocks = grey[:hh, :ww].reshape(hh // factor, factor, ww // factor, factor)
    return blocks.mean(axis=(1, 3))


class PresenceDetector:
    """Tells, frame by frame, whether an item is in view (see the module docstring)."""

    def __init__(self, config: PresenceConfig | None = None) -> None:
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

    @property
    def present(self) -> bool:
        return self._present

    @property
    def background(self) -> np.ndarray | None:
        """The current background model (small greyscale), for inspection."""
        return self._background

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The part of a frame the detector watches (and the classifier should see)."""
        return crop_roi(image, self.config.roi)

    def update(self, image: np.ndarray) -> PresenceUpdate:
        """Feed one RGB uint8 frame; returns the presence after it."""
        cfg = self.config
        small = downscale_grey(self.crop(image), cfg.width)
        if self._background is not None and self._background.shape != small.shape:
            self.reset()  # the camera changed resolution: the old background means nothing
        last, self._last = self._last, small
        motion = self._fraction(small, last) if last is not None else 1.0
        still = motion < cfg.still_fraction
        if self._background is None or self._learned < cfg.learn_frames:
            self._learn_initial(small)
            return PresenceUpdate(False, False, False, 0.0, True, motion, still)

        changed = self._fraction(small, self._background)
        is_changed = changed > cfg.changed_fraction
        if (
            is_changed
            and self._previous_background is not None
            and self._fraction(small, self._previous_background) <= cfg.changed_fraction
        ):
            # The thing absorbed into the background was taken away: the old empty scene.
            self._background, self._previous_background = self._previous_background, None
            changed = self._fraction(small, self._background)
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

    def _fraction(self, a: np.ndarray, b: np.ndarray) -> float:
        """Fraction of pixels differing by more than the threshold (lighting compensated)."""
        diff = a - b
        if self.config.compensate_lighting:
            diff = diff - float(np.median(diff))
        return float(np.mean(np.abs(diff) > self.config.pixel_threshold))

    def _learn_initial(self, small: np.ndarray) -> None:
        if self._background is None:
            self._background = small.copy()
            self._learned = 1
            return
        self._learned += 1
        self._background += (small - self._background) / self._learned
