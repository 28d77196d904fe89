"""Composite rows for the head: one per board photo, cached per image (misses too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.training.test_augment import board_photo
from whichbin.training.embeddings import EmbeddingCache, compute_composite_embeddings


class CountingEncoder:
    """Mean RGB as the embedding; counts the images it is asked to encode."""

    def __init__(self) -> None:
        self.images = 0
        self.seen: list[Image.Image] = []

    def encode(self, images: list[Image.Image]) -> np.ndarray:
        self.images += len(images)
        self.seen += images
        return np.stack([np.asarray(im, np.float32).mean((0, 1)) for im in images])


def test_board_photos_get_a_composite_and_others_none(tmp_path: Path) -> None:
    board, _ = board_photo()
    board.save(tmp_path / "board.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (256, 192, 3), np.uint8)).save(tmp_path / "scene.png")
    paths = [tmp_path / "board.png", tmp_path / "scene.png"]
    shas = ["a" * 64, "b" * 64]
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    enc = CountingEncoder()
    emb, ok = compute_composite_embeddings(paths, shas, enc, cache, "k")  # type: ignore[arg-type]
    assert ok.tolist() == [True, False] and emb.shape == (1, 3) and enc.images == 1
    # The board is gone: the composite is not the light grey board photo.
    assert np.abs(emb[0] - np.asarray(board, np.float32).mean((0, 1))).max() > 5
    again, ok2 = compute_composite_embeddings(paths, shas, enc, cache, "k")  # type: ignore[arg-type]
    assert enc.images == 1  # both the composite and the miss came from the cache
    np.testing.assert_array_equal(again, emb)
    assert ok2.tolist() == [True, False]
    cache.close()
