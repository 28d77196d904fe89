"""The change detector on synthetic frames: no clock, no mocks."""

from __future__ import annotations

import numpy as np
import pytest

from tests.edge.scenes import scene_frame
from tests.helpers import COLORS
from whichbin.config import PresenceConfig
from whichbin.edge.presence import PresenceDetector, crop_roi, downscale_grey

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


def test_item_enters_after_enter_frames_still_frames_and_leaves_after_exit_frames() -> None:
    det = PresenceDetector(PresenceConfig(learn_frames=5, enter_frames=2, exit_frames=3))
    updates = [det.update(scene_frame(None, i)) for i in range(8)]
    updates += [det.update(scene_frame(RED, 100 + i)) for i in range(6)]
    updates += [det.update(scene_frame(None, 200 + i)) for i in range(6)]
    present = [u.present for u in updates]
    # Frame 8 is the item arriving (motion), 9 and 10 are still: present from frame 10.
    assert present == [False] * 8 + [False, False] + [True] * 4 + [True, True] + [False] * 4
    assert not updates[8].still and updates[9].still
    assert [i for i, u in enumerate(updates) if u.entered] == [10]
    assert [i for i, u in enumerate(updates) if u.left] == [16]
    assert all(u.learning for u in updates[:5]) and not updates[5].learning


def test_a_moving_hand_is_not_an_item() -> None:
    # Something crosses the view, a different place each frame: never still, never present.
    det = PresenceDetector()
    feed(det, [scene_frame(None, i) for i in range(8)])
    frames = []
    for i in range(12):
        f = scene_frame(None, 50 + i)
        x = 4 + 7 * i
        f[10:60, x : x + 12] = (90, 60, 40)
        frames.append(f)
    assert not any(feed(det, frames))


def test_a_sudden_global_lighting_change_is_not_an_item() -> None:
    det = PresenceDetector()
    frames = [scene_frame(None, i) for i in range(10)]
    frames += [scene_frame(None, 100 + i, brightness=-45) for i in range(30)]  # lights dimmed
    frames += [scene_frame(None, 200 + i, brightness=30) for i in range(30)]  # and brighter
    assert not any(feed(det, frames))
    # Without the compensation the same step reads as an item.
    raw = PresenceDetector(PresenceConfig(compensate_lighting=False))
    assert any(feed(raw, frames))


def test_roi_ignores_changes_outside_it() -> None:
    def with_patch(seed: int, left: bool) -> np.ndarray:
        f = scene_frame(None, seed)
        if left:
            f[:, :40] = RED  # 40 of 96 columns: outside an ROI on the right half
        else:
            f[10:60, 60:90] = RED
        return f

    cfg = PresenceConfig(roi=(0.5, 0.0, 1.0, 1.0))
    det = PresenceDetector(cfg)
    feed(det, [scene_frame(None, i) for i in range(8)])
    assert not any(feed(det, [with_patch(50 + i, left=True) for i in range(10)]))
    assert any(feed(det, [with_patch(80 + i, left=False) for i in range(10)]))
    image = scene_frame(None, 0)
    assert det.crop(image).shape == (72, 48, 3)
    assert crop_roi(image, (0.0, 0.0, 1.0, 1.0)) is image
    with pytest.raises(ValueError):
        PresenceConfig(roi=(0.5, 0.0, 0.4, 1.0))


def test_a_moved_bin_is_absorbed_and_its_removal_is_no_item() -> None:
    det = PresenceDetector(PresenceConfig(absorb_frames=20))
    feed(det, [scene_frame(None, i) for i in range(8)])
    # A bin is moved into view and stays: present for a while, then part of the scene.
    updates = [det.update(scene_frame(RED, 100 + i)) for i in range(40)]
    absorbed = [i for i, u in enumerate(updates) if u.absorbed]
    assert len(absorbed) == 1 and updates[absorbed[0]].left
    assert not any(u.present for u in updates[absorbed[0] :])
    # Taken away again: the remembered empty scene is recognised at once.
    assert not any(feed(det, [scene_frame(None, 200 + i) for i in range(20)]))
    # And a new item is still seen.
    assert any(feed(det, [scene_frame(COLORS["compost"], 300 + i) for i in range(6)]))


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
