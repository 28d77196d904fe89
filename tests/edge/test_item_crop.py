"""The edge classifies the item, not the frame: presence finds where the scene changed,
the runner cuts that out with a margin. Generated photos on generated backgrounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.edge.fakes import InMemoryPublisher
from tests.helpers import COLORS
from whichbin.config import PresenceConfig
from whichbin.contract import Topics
from whichbin.edge.presence import PresenceDetector
from whichbin.edge.region import blob_box, crop_box, grow
from whichbin.edge.runner import ActiveModel, EdgeRunner, StaticModel
from whichbin.edge.scenes import BACKGROUNDS, SequenceBuilder
from whichbin.edge.sources import Frame
from whichbin.inference import OnnxClassifier
from whichbin.rules import Prediction

SIZE = (320, 240)


def photo(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (120, 90)) -> Path:
    """A photo-like item: a colour with stripes and noise (so it has texture, like a photo)."""
    rng = np.random.default_rng(sum(rgb))
    w, h = size
    arr = np.empty((h, w, 3), np.float32)
    arr[:] = rgb
    arr[:, ::8] *= 0.8  # stripes
    arr += rng.normal(0, 6, arr.shape)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def settle(det: PresenceDetector, frames: list[np.ndarray]) -> list[bool]:
    return [det.update(f).present for f in frames]


@pytest.mark.parametrize("scene", BACKGROUNDS)
def test_item_box_covers_a_composited_item(scene: str, tmp_path: Path) -> None:
    item = photo(tmp_path / "item.jpg", (90, 140, 200))  # a blue tub
    seq = (
        SequenceBuilder(seed=4, size=SIZE, scene=scene)
        .empty(8)
        .drop(item, "recycling", rest=6, area=0.3, center=(0.62, 0.4))
        .build()
    )
    det = PresenceDetector()
    first, _, _ = seq.items[0]
    present = settle(det, seq.frames[: first + 4 + 5])  # moving in, then resting
    assert present[-1]
    box = det.item_box()
    assert box is not None
    x0, y0, x1, y1 = seq.boxes[0]
    truth = (x0 / SIZE[0], y0 / SIZE[1], x1 / SIZE[0], y1 / SIZE[1])
    assert iou(box, truth) > 0.85
    # It covers the item (within a cell of the 64 px wide detection grid).
    cell = 1 / 64
    assert box[0] <= truth[0] + cell and box[1] <= truth[1] + cell
    assert box[2] >= truth[2] - cell and box[3] >= truth[3] - cell


def test_a_small_item_of_the_counters_brightness_is_detected(tmp_path: Path) -> None:
    # 20 % of the frame, its grey level equal to the counter's: only its colour differs.
    counter = SequenceBuilder(seed=1, size=SIZE).background
    grey = float((counter.reshape(-1, 3) @ np.array([0.299, 0.587, 0.114])).mean())
    brown = (grey + 45, grey - 10, grey - 45)
    luma = 0.299 * brown[0] + 0.587 * brown[1] + 0.114 * brown[2]
    assert abs(luma - grey) < 10  # the same brightness as the counter
    item = photo(tmp_path / "brown.jpg", tuple(int(c) for c in brown))  # type: ignore[arg-type]
    seq = (
        SequenceBuilder(seed=1, size=SIZE)
        .empty(8)
        .drop(item, "recycling", rest=8, area=0.2, center=(0.3, 0.6))
        .build()
    )
    det = PresenceDetector()
    assert any(settle(det, seq.frames))
    # Smaller still: a tenth of the frame.
    seq = (
        SequenceBuilder(seed=2, size=SIZE)
        .empty(8)
        .drop(item, "recycling", rest=8, area=0.1, center=(0.7, 0.3))
        .build()
    )
    assert any(settle(PresenceDetector(), seq.frames))


def test_crop_box_adds_a_margin_squares_up_and_stays_in_the_frame() -> None:
    shape = (240, 320, 3)
    # 100 x 50 box, margin 0.1 of the longer side (10 px) → 120 x 70, squared → 120 x 120
    assert crop_box((100, 100, 200, 150), shape, 0.1, square=False) == (90, 90, 210, 160)
    assert crop_box((100, 100, 200, 150), shape, 0.1) == (90, 65, 210, 185)
    # Near the edge: moved inside, not cut.
    x0, y0, x1, y1 = crop_box((0, 0, 60, 60), shape, 0.5)
    assert (x0, y0) == (0, 0) and x1 - x0 == y1 - y0 == 120
    # Larger than the frame's height: as tall as the frame.
    x0, y0, x1, y1 = crop_box((0, 0, 320, 200), shape, 0.2)
    assert (y0, y1) == (0, 240) and x1 - x0 == 240


def test_blob_box_ignores_specks_and_keeps_a_split_item_whole() -> None:
    mask = np.zeros((48, 64), bool)
    mask[10:30, 10:20] = True  # the item's left half
    mask[10:30, 23:34] = True  # its right half, past a background-coloured stripe
    mask[40:42, 60:62] = True  # a speck
    assert blob_box(mask, min_cells=5) == (10, 10, 34, 30)


def test_changes_grow_over_weaker_connected_ones_only() -> None:
    seeds = np.zeros((48, 64), bool)
    seeds[10:30, 10:20] = True  # the item's contrasted part
    weak = np.zeros_like(seeds)
    weak[10:36, 10:34] = True  # its low-contrast rest, attached
    weak[0:3, 40:60] = True  # a faint shadow elsewhere, not attached: ignored
    grown = grow(seeds, weak)
    assert grown[10:36, 10:34].all() and not grown[0:3].any()
    assert blob_box(grown) == (10, 10, 34, 36)


def test_no_background_is_learned_from_frames_that_never_hold_still() -> None:
    rng = np.random.default_rng(0)
    det = PresenceDetector()
    updates = [det.update(rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)) for _ in range(30)]
    assert all(u.learning for u in updates) and not det.learned


class RecordingClassifier:
    """Answers "landfill" and keeps every image it was given."""

    label_to_bin = {"trash": "landfill", "plastic": "recycling"}
    threshold = 0.5
    rules_ref = {"name": "test", "version": "1"}

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []

    def predict(self, images: list, k: int = 3) -> list[Prediction]:
        self.images += [np.asarray(i).copy() for i in images]
        probs = {"trash": 0.9, "plastic": 0.1}
        return [
            Prediction(
                bin="landfill",
                label="trash",
                confidence=0.9,
                decision="decided",
                top_k=[],
                probs=probs,
            )
            for _ in images
        ]


def red_item_scene() -> tuple[list[np.ndarray], tuple[int, int, int, int]]:
    """A teal-grey 320 x 240 counter, then a red item on 14 % of it for 12 frames."""
    rng = np.random.default_rng(0)
    box = (170, 50, 278, 150)  # 108 x 100 px
    frames = []
    for i in range(26):
        arr = np.array([120.0, 200.0, 200.0]) + rng.normal(0, 3, (240, 320, 3))
        if 8 <= i < 20:
            arr[box[1] : box[3], box[0] : box[2]] = COLORS["landfill"]
        frames.append(np.clip(arr, 0, 255).astype(np.uint8))
    return frames, box


class ListSource:
    def __init__(self, images: list[np.ndarray]) -> None:
        self.frames = [Frame(img, i / 10, i) for i, img in enumerate(images)]

    def read(self) -> Frame | None:
        return self.frames.pop(0) if self.frames else None

    def close(self) -> None:
        self.frames = []


def run_scene(classifier: object, crop: bool) -> InMemoryPublisher:
    frames, _ = red_item_scene()
    model = ActiveModel(classifier, "test/1", "0" * 64)  # type: ignore[arg-type]
    pub = InMemoryPublisher()
    presence = PresenceDetector(PresenceConfig(crop=crop))
    EdgeRunner(ListSource(frames), StaticModel(model), pub, "cam1", presence=presence).run()
    return pub


def test_the_runner_classifies_the_items_crop() -> None:
    clf = RecordingClassifier()
    pub = run_scene(clf, crop=True)
    assert len(pub.on(Topics("cam1").event)) == 1
    assert clf.images
    _, (x0, y0, x1, y1) = red_item_scene()
    side = max(x1 - x0, y1 - y0)
    want = side * (1 + 2 * PresenceConfig().crop_margin)  # the item plus a margin each side
    for image in clf.images:
        h, w = image.shape[:2]
        assert h == w  # squared up
        assert want - 2 <= w <= want + 2 * 320 / 64  # at most a detection cell more per side
        red = np.mean(np.all(np.abs(image.astype(int) - COLORS["landfill"]) < 30, axis=-1))
        assert red > 0.5  # mostly the item (it is 14 % of the whole frame)
    # Cropping off: the whole frame, as before.
    clf = RecordingClassifier()
    run_scene(clf, crop=False)
    assert clf.images and all(i.shape == (240, 320, 3) for i in clf.images)


def test_several_crops_vote() -> None:
    clf = RecordingClassifier()
    frames, _ = red_item_scene()
    model = ActiveModel(clf, "test/1", "0" * 64)  # type: ignore[arg-type]
    presence = PresenceDetector(PresenceConfig(crop_margin=0.1, extra_crop_margins=(0.0, 0.4)))
    runner = EdgeRunner(
        ListSource(frames), StaticModel(model), InMemoryPublisher(), "c", presence=presence
    )
    stats = runner.run()
    assert stats.events == 1 and len(clf.images) == 3 * stats.classified
    sizes = [i.shape[0] for i in clf.images[:3]]
    assert sizes[1] < sizes[0] < sizes[2]  # margins 0.1, 0.0, 0.4


def test_a_real_model_decides_on_the_crop_and_is_unsure_on_the_frame(color_bundle: Path) -> None:
    # The colour model averages the picture: the item alone is clearly red (trash), the
    # whole frame is mostly teal counter and the answer is a guess between green and blue.
    clf = OnnxClassifier(color_bundle)
    (event,) = run_scene(clf, crop=True).on(Topics("cam1").event)
    assert event["bin"] == "landfill" and event["decision"] == "decided"
    assert event["confidence"] > 0.9
    (event,) = run_scene(clf, crop=False).on(Topics("cam1").event)
    assert event["bin"] != "landfill" and event["decision"] == "unsure"
