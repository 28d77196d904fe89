"""The change detector on synthetic frames: no clock, no mocks."""

from __future__ import annotations

import numpy as np
import pytest

from tests.edge.scenes import scene_frame
from tests.helpers import COLORS
from whichbin.edge.presence import PresenceConfig, PresenceDetector, downscale_grey

RED = COLORS["landfill"]


def feed(det: PresenceDetector, frames: list[np.ndarray]) -> list[bool]:
    return [det.update(f).present for f in frames]


def test_downscale_grey_averages_blocks() -> None:
    img = np.zeros((8, 16, 3), np.uint8)
    img[:, 8:] = 255
    small = downscale_grey(img, width=2)
    assert small.shape == (1, 2)
    assert small[0, 0] == pytest.approx(0.0)
    assert small[0, 1] == pytest.approx(255.0, abs=0.1)


def test_empty_scene_is_never_present() -> None:
    det = PresenceDetector()
    assert not any(feed(det, [scene_frame(None, i) for i in range(100)]))


def test_slow_lighting_drift_is_learned_not_detected() -> None:
    # 0.25 grey levels per frame: 75 levels over 300 frames, far beyond the pixel threshold
    # in total, but the running background keeps up.
    det = PresenceDetector()
    frames = [scene_frame(None, i, brightness=-0.25 * i) for i in range(300)]
    assert not any(feed(det, frames))
    assert det.background is not None
    assert det.background.mean() == pytest.approx(200 - 75, abs=10)


def test_item_enters_after_enter_frames_and_leaves_after_exit_frames() -> None:
    det = PresenceDetector(PresenceConfig(learn_frames=5, enter_frames=2, exit_frames=3))
    updates = [det.update(scene_frame(None, i)) for i in range(8)]
    updates += [det.update(scene_frame(RED, 100 + i)) for i in range(6)]
    updates += [det.update(scene_frame(None, 200 + i)) for i in range(6)]
    present = [u.present for u in updates]
    assert (
        present == [False] * 8 + [False, True, True, True, True, True] + [True, True] + [False] * 4
    )
    assert [i for i, u in enumerate(updates) if u.entered] == [9]
    assert [i for i, u in enumerate(updates) if u.left] == [16]
    assert all(u.learning for u in updates[:5]) and not updates[5].learning


def test_one_frame_flicker_is_not_an_item() -> None:
    det = PresenceDetector(PresenceConfig(enter_frames=2))
    frames = [scene_frame(None, i) for i in range(10)]
    frames += [scene_frame(RED, 50), scene_frame(None, 51), scene_frame(RED, 52)]
    frames += [scene_frame(None, 60 + i) for i in range(5)]
    assert not any(feed(det, frames))


def test_an_item_is_not_learned_into_the_background() -> None:
    det = PresenceDetector(PresenceConfig(alpha=0.5))
    feed(det, [scene_frame(None, i) for i in range(10)])
    # A long stay with a fast learning rate: still present all along.
    assert all(feed(det, [scene_frame(RED, 100 + i) for i in range(200)])[2:])


def test_resolution_change_relearns() -> None:
    det = PresenceDetector()
    feed(det, [scene_frame(None, i) for i in range(10)])
    bigger = np.full((144, 192, 3), 90, np.uint8)
    update = det.update(bigger)
    assert update.learning and not update.present


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError):
        PresenceConfig(enter_frames=0)
