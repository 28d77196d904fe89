"""Augmentation: the board cut-out, compositing, and determinism given an rng."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from whichbin.training.augment import (
    augment,
    composite_on,
    object_mask,
    procedural_background,
)


def board_photo(w: int = 192, h: int = 256, seed: int = 0) -> tuple[Image.Image, np.ndarray]:
    """A shaded light-grey board with one coloured ellipse on it; returns (image, truth)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    shade = 225 - 30 * (yy / h) + 10 * (xx / w)  # uneven lighting, as on the real board
    a = np.stack([shade, shade + 2, shade + 6], -1) + rng.normal(0, 2, (h, w, 3))
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    box = (w * 0.3, h * 0.25, w * 0.75, h * 0.7)
    ImageDraw.Draw(img).ellipse(box, fill=(30, 110, 60))
    truth = Image.new("L", (w, h), 0)
    ImageDraw.Draw(truth).ellipse(box, fill=255)
    return img, np.asarray(truth) > 127


def test_object_mask_finds_the_object_on_a_shaded_board() -> None:
    img, truth = board_photo()
    mask = object_mask(img)
    assert mask is not None and mask.size == img.size
    m = np.asarray(mask) > 127
    iou = (m & truth).sum() / (m | truth).sum()
    assert iou > 0.85, iou


def test_object_mask_refuses_pictures_without_a_board() -> None:
    rng = np.random.default_rng(1)
    clutter = Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    assert object_mask(clutter) is None
    full = Image.new("RGB", (160, 120), (150, 90, 40))  # an object filling the frame
    assert object_mask(full) is None
    img = Image.new("RGB", (160, 120), (120, 40, 40))
    same = composite_on(img, Image.new("RGB", (50, 50)), rng)  # no mask: unchanged
    assert np.array_equal(np.asarray(same), np.asarray(img))


def test_composite_replaces_the_board_keeps_the_object() -> None:
    img, truth = board_photo()
    blue = Image.new("RGB", (300, 300), (20, 40, 200))
    out = np.asarray(composite_on(img, blue, np.random.default_rng(3)), np.int32)
    assert out.shape == (256, 192, 3)
    board_like = (out.min(-1) > 180).mean()
    assert board_like < 0.02  # the light board is gone
    green = (out[..., 1] > out[..., 0] + 40) & (out[..., 1] > out[..., 2] + 20)
    assert green.sum() > 0.5 * truth.sum()  # the object is still there


def test_augment_is_pure_given_the_rng() -> None:
    img, _ = board_photo()
    bgs = [procedural_background(np.random.default_rng(9), (200, 150))]
    a = augment(img, np.random.default_rng(5), bgs, p_composite=1.0)
    b = augment(img, np.random.default_rng(5), bgs, p_composite=1.0)
    c = augment(img, np.random.default_rng(6), bgs, p_composite=1.0)
    assert a.mode == "RGB"
    assert a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))
    assert a.size != c.size or not np.array_equal(np.asarray(a), np.asarray(c))


def test_procedural_backgrounds_vary() -> None:
    seen = set()
    for s in range(12):
        bg = procedural_background(np.random.default_rng(s), (64, 48))
        assert bg.size == (64, 48) and bg.mode == "RGB"
        seen.add(tuple(np.asarray(bg).mean((0, 1)).round(-1)))
    assert len(seen) > 6
