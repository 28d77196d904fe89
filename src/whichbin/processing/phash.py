"""Perceptual hashes that survive flips and rotations, and near-duplicate grouping. Pure numpy.

pHash: 32x32 grey → 2-D DCT-II → top-left 8x8 → one bit per coefficient (above the median),
packed into a 64-bit integer. Flipped or rotated copies of a photo get unrelated pHashes, so
each image is hashed in all 8 orientations (the dihedral group D4) and two images are
compared by the smallest Hamming distance between one's upright hash and any orientation of
the other.

A 64-bit pHash mostly encodes the background of a small object on a plain surface, so on
real data many unrelated photos fall within a few bits of each other. pHash is therefore
the fast candidate filter, and each candidate pair is confirmed by comparing tiny RGB
thumbnails (16x16) in the best-matching orientation: re-encoded, resized, flipped or rotated
copies differ by about 3 grey levels on average, different objects by 10 or more.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

HASH_SIZE = 8
GREY_SIZE = 32
THUMB_SIZE = 16
MAX_THUMB_DIFF = 8.0  # mean absolute difference (0-255) that still confirms a candidate


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return np.cos(np.pi * (2 * i + 1) * k / (2 * n))


_DCT = _dct_matrix(GREY_SIZE)
_BIT_WEIGHTS = (np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)


def phash(grey: np.ndarray) -> int:
    """64-bit pHash of a 32x32 greyscale array (any numeric dtype)."""
    if grey.shape != (GREY_SIZE, GREY_SIZE):
        raise ValueError(f"phash needs a {GREY_SIZE}x{GREY_SIZE} array, got {grey.shape}")
    coeffs = _DCT @ grey.astype(np.float64) @ _DCT.T
    low = coeffs[:HASH_SIZE, :HASH_SIZE].ravel()
    bits = (low > np.median(low)).astype(np.uint64)
    return int((bits * _BIT_WEIGHTS).sum(dtype=np.uint64))


def dihedral(grey: np.ndarray) -> list[np.ndarray]:
    """The 8 orientations of an array: 4 rotations, each also mirrored. Index 0 is upright."""
    out: list[np.ndarray] = []
    for k in range(4):
        r = np.rot90(grey, k)
        out.extend((r, np.fliplr(r)))
    return out


def dihedral_hashes(grey: np.ndarray) -> list[int]:
    """pHash of each of the 8 orientations; index 0 is the upright image's hash."""
    return [phash(g) for g in dihedral(grey)]


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    return table[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)


def hamming(a: int, b: int) -> int:
    """Bits that differ between two 64-bit hashes."""
    return (a ^ b).bit_count()


def dihedral_distance(a: Sequence[int], b: Sequence[int]) -> int:
    """Smallest Hamming distance between ``a`` upright and any orientation of ``b``."""
    return min(hamming(a[0], t) for t in b)


class UnionFind:
    """Disjoint sets over 0..n-1 with path halving and union by size."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def groups(self) -> list[list[int]]:
        """All sets, each sorted, ordered by their smallest member."""
        by_root: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            by_root.setdefault(self.find(i), []).append(i)
        return sorted(by_root.values(), key=lambda g: g[0])


def thumb_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute difference between thumbnails ``a`` and the best orientation of ``b``.

    Args:
        a: k x s x s x c thumbnails (uint8).
        b: k x s x s x c thumbnails (uint8), compared pairwise with ``a``.

    Returns:
        k smallest mean absolute differences over the 8 orientations of ``b``.
    """
    a = a.astype(np.int16)
    b = b.astype(np.int16)
    best = np.full(len(a), np.inf)
    for k in range(4):
        r = np.rot90(b, k, axes=(1, 2))
        for o in (r, np.flip(r, axis=2)):
            np.minimum(best, np.abs(a - o).mean(axis=(1, 2, 3)), out=best)
    return best


def near_duplicate_groups(
    hashes: np.ndarray | Sequence[Sequence[int]],
    max_distance: int,
    thumbs: np.ndarray | None = None,
    max_thumb_diff: float = MAX_THUMB_DIFF,
    block: int = 256,
) -> list[list[int]]:
    """Group images whose dihedral pHash distance is at most ``max_distance`` (transitively).

    Args:
        hashes: n x 8 dihedral hashes (column 0 upright), as uint64 or Python ints.
        max_distance: Largest Hamming distance that still makes a candidate pair.
        thumbs: Optional n x s x s x 3 uint8 thumbnails; when given, a candidate pair only
            counts if ``thumb_difference`` is at most ``max_thumb_diff``.
        max_thumb_diff: Confirmation threshold (mean absolute difference, 0-255).
        block: Rows compared at a time; bounds memory at about block * n * 8 bytes.

    Returns:
        Groups of two or more row indices, each sorted, ordered by their first index.
    """
    h = np.asarray(hashes, dtype=np.uint64).reshape(-1, 8)
    n = len(h)
    pairs_i: list[np.ndarray] = []
    pairs_j: list[np.ndarray] = []
    for start in range(0, n, block):
        stop = min(start + block, n)
        rows = h[start:stop]  # (b, 8)
        cols = h[start:]  # (m, 8): only pairs i < j are needed
        best = np.full((stop - start, n - start), 64, dtype=np.uint8)
        for t in range(8):
            # One direction is enough: the 8 orientations include every inverse, so if j is
            # i turned by T, then j turned back by T's inverse hashes like i upright.
            np.minimum(best, _popcount(rows[:, :1] ^ cols[None, :, t]), out=best)
        ii, jj = np.nonzero(best <= max_distance)
        upper = jj > ii
        pairs_i.append(ii[upper] + start)
        pairs_j.append(jj[upper] + start)
    pi = np.concatenate(pairs_i) if pairs_i else np.zeros(0, dtype=np.int64)
    pj = np.concatenate(pairs_j) if pairs_j else np.zeros(0, dtype=np.int64)
    if thumbs is not None and len(pi):
        keep = np.zeros(len(pi), dtype=bool)
        for s in range(0, len(pi), 20_000):
            a, b = thumbs[pi[s : s + 20_000]], thumbs[pj[s : s + 20_000]]
            keep[s : s + 20_000] = thumb_difference(a, b) <= max_thumb_diff
        pi, pj = pi[keep], pj[keep]
    uf = UnionFind(n)
    for i, j in zip(pi.tolist(), pj.tolist(), strict=True):
        uf.union(i, j)
    return [g for g in uf.groups() if len(g) > 1]
