"""pHash, dihedral matching and near-duplicate grouping (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.processing.images import photo_array
from whichbin.processing import phash as ph
from whichbin.processing.validate import image_hashes, image_thumb


def _hashes(arr: np.ndarray) -> list[int]:
    return [int(h, 16) for h in image_hashes(Image.fromarray(arr))]


def _thumb(arr: np.ndarray) -> np.ndarray:
    from whichbin.processing.validate import Inspection

    return Inspection("x", thumb=image_thumb(Image.fromarray(arr))).thumb_array()


def test_phash_is_64_bit_and_balanced() -> None:
    grey = photo_array(1)[:32, :32].mean(axis=2)
    h = ph.phash(grey)
    assert 0 <= h < 2**64
    assert h.bit_count() == 32  # one bit per coefficient above the median of 64


def test_phash_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError, match="32x32"):
        ph.phash(np.zeros((16, 16)))


@pytest.mark.parametrize(
    "transform",
    [
        np.fliplr,
        np.flipud,
        lambda a: np.rot90(a, 1),
        lambda a: np.rot90(a, 2),
        lambda a: np.rot90(a, 3),
        lambda a: np.rot90(a, 1)[:, ::-1],
    ],
    ids=["mirror", "flip", "rot90", "rot180", "rot270", "transpose"],
)
def test_flipped_and_rotated_copies_are_near(transform) -> None:  # noqa: ANN001
    a = photo_array(7)
    b = np.ascontiguousarray(transform(a))
    ha, hb = _hashes(a), _hashes(b)
    assert ph.hamming(ha[0], hb[0]) > 6  # plain pHash does not see it
    # non-square: squashing to 32x32 before or after turning resamples a little differently
    assert ph.dihedral_distance(ha, hb) <= 4
    assert ph.thumb_difference(_thumb(a)[None], _thumb(b)[None])[0] < 3


def test_different_images_are_far() -> None:
    ha, hb = _hashes(photo_array(1)), _hashes(photo_array(2))
    assert ph.dihedral_distance(ha, hb) > 6


def test_groups_transitive_and_verified() -> None:
    base = [photo_array(s) for s in range(6)]
    imgs = base + [np.fliplr(base[0]), np.rot90(base[0]), np.rot90(base[3], 2)]
    hashes = np.array([_hashes(np.ascontiguousarray(a)) for a in imgs], dtype=np.uint64)
    thumbs = np.stack([_thumb(np.ascontiguousarray(a)) for a in imgs])
    groups = ph.near_duplicate_groups(hashes, 6, thumbs, block=4)  # block < n: crosses blocks
    assert groups == [[0, 6, 7], [3, 8]]


def test_thumbnail_check_rejects_lookalike_hashes() -> None:
    # Same pHash (forced), very different pictures: the thumbnail check must refuse them.
    a, b = photo_array(1), photo_array(2)
    hashes = np.array([_hashes(a), _hashes(a)], dtype=np.uint64)
    thumbs = np.stack([_thumb(a), _thumb(b)])
    assert ph.near_duplicate_groups(hashes, 6) == [[0, 1]]
    assert ph.near_duplicate_groups(hashes, 6, thumbs) == []


def test_union_find() -> None:
    uf = ph.UnionFind(5)
    uf.union(3, 1)
    uf.union(1, 4)
    assert uf.groups() == [[0], [1, 3, 4], [2]]


def test_popcount_matches_python() -> None:
    x = np.array([0, 1, 2**63, 2**64 - 1, 0x0F0F], dtype=np.uint64)
    assert ph._popcount(x).tolist() == [int(v).bit_count() for v in x]
