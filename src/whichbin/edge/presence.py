"""Is an item in front of the camera? A change detector against the empty scene. Pure numpy.

Each frame is reduced to a small greyscale image (area averaging, which also removes
sensor noise). The first ``learn_frames`` frames are averaged into a background model
of the empty scene; afterwards the background is re-learned slowly (a running average
with rate ``alpha``) while, and only while, the scene is empty, so slow lighting drift
is absorbed but an item is never learned into the background. A pixel has changed when
it differs from the background by more than ``pixel_threshold`` grey levels; a frame
has changed when more than ``changed_fraction`` of its pixels have. An item is present
after ``enter_frames`` consecutive changed frames, and gone after ``exit_frames``
consecutive unchanged ones (hysteresis, so a flicker is no item and a hand is no exit).

Known limits (documented rather than hidden): greyscale misses an item whose brightness
equals the background's; an item already in view while the background is learned becomes
part of it; a sudden global lighting change reads as an item until it goes away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class PresenceConfig:
    """Tuning of the change detector (defaults suit a fixed camera over a bin-side shelf)."""

    width: int = 64  # downscaled width in pixels (height keeps the aspect ratio)
    learn_frames: int = 5  # frames averaged into the initial background
    alpha: float = 0.05  # background learning rate while the scene is empty
    pixel_threshold: float = 25.0  # grey levels (0-255) for a pixel to count as changed
    changed_fraction: float = 0.10  # fraction of changed pixels for a frame to count
    enter_frames: int = 2  # consecutive changed frames before an item is present
    exit_frames: int = 3  # consecutive background frames before it is gone

    def __post_init__(self) -> None:
        if self.width < 4:
            raise ValueError("width must be at least 4")
        if self.learn_frames < 1 or self.enter_frames < 1 or self.exit_frames < 1:
            raise ValueError("learn_frames, enter_frames and exit_frames must be at least 1")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError("alpha must be within [0, 1]")
        if not 0.0 < self.changed_fraction < 1.0:
            raise ValueError("changed_fraction must be within (0, 1)")


@dataclass(frozen=True)
class PresenceUpdate:
    """What one frame told the detector."""

    present: bool  # an item is in view (after hysteresis)
    entered: bool  # it arrived with this frame
    left: bool  # it left with this frame
    changed: float  # fraction of changed pixels (0 while learning)
    learning: bool  # the initial background is still being learned


def downscale_grey(image: np.ndarray, width: int) -> np.ndarray:
    """RGB (or grey) uint8 HxW[x3] → small float32 greyscale by area averaging."""
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
        self._learned = 0
        self._changed_run = 0
        self._still_run = 0
        self._present = False

    @property
    def present(self) -> bool:
        return self._present

    @property
    def background(self) -> np.ndarray | None:
        """The current background model (small greyscale), for inspection."""
        return self._background

    def update(self, image: np.ndarray) -> PresenceUpdate:
        """Feed one RGB uint8 frame; returns the presence after it."""
        cfg = self.config
        small = downscale_grey(image, cfg.width)
        if self._background is not None and self._background.shape != small.shape:
            self.reset()  # the camera changed resolution: the old background means nothing
        if self._background is None or self._learned < cfg.learn_frames:
            self._learn_initial(small)
            return PresenceUpdate(False, False, False, 0.0, True)

        changed = float(np.mean(np.abs(small - self._background) > cfg.pixel_threshold))
        is_changed = changed > cfg.changed_fraction
        entered = left = False
        if is_changed:
            self._changed_run += 1
            self._still_run = 0
            if not self._present and self._changed_run >= cfg.enter_frames:
                self._present = entered = True
        else:
            self._still_run += 1
            self._changed_run = 0
            if self._present and self._still_run >= cfg.exit_frames:
                self._present = False
                left = True
            if not self._present:
                # Only a quiet, empty scene teaches the background.
                self._background += cfg.alpha * (small - self._background)
        return PresenceUpdate(self._present, entered, left, changed, False)

    def _learn_initial(self, small: np.ndarray) -> None:
        if self._background is None:
            self._background = small.copy()
            self._learned = 1
            return
        self._learned += 1
        self._background += (small - self._background) / self._learned
