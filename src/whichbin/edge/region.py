"""Where in a small change mask the item is, and how to cut it out. Pure numpy.

Helpers of the presence detector (``whichbin.edge.presence``): the lighting shift a whole
scene shares, noise removal, connected blobs (8-connected), growing them over weaker
changes (hysteresis), their bounding box, and
the crop box around an item (margin, squared up, kept inside the frame).
"""

from __future__ import annotations

import numpy as np

__all__ = ["blob_box", "crop_box", "denoise", "grow", "label_blobs", "lighting_shift"]


def lighting_shift(diff: np.ndarray, width: float = 4.0) -> np.ndarray:
    """Per channel, the shift most cells share: a light moves the whole empty scene alike.

    The peak of the differences' histogram (``width``-level bins, smoothed), refined by the
    median near it. Unlike the plain median it stays on the background's shift when an
    item covers more than half the picture, as long as the item is not one flat colour.
    ``diff`` is (cells, channels).
    """
    out = np.empty(diff.shape[1], np.float32)
    edges = np.arange(-256.0, 256.0 + width, width)
    for c in range(diff.shape[1]):
        values = diff[:, c]
        counts, _ = np.histogram(values, edges)
        smooth = np.convolve(counts, np.ones(3), mode="same")
        peak = edges[int(np.argmax(smooth))] + width / 2
        near = values[np.abs(values - peak) <= 2 * width]
        out[c] = np.median(near) if near.size else peak
    return out


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """How many of each cell's 8 neighbours are set."""
    p = np.pad(mask.astype(np.int8), 1)
    h, w = mask.shape
    return sum(  # type: ignore[return-value]
        p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    )


def denoise(mask: np.ndarray) -> np.ndarray:
    """Drop set cells with fewer than two set neighbours (sensor noise, JPEG speckle)."""
    return mask & (_neighbours(mask) >= 2)


def label_blobs(mask: np.ndarray) -> np.ndarray:
    """8-connected components of a boolean mask: 0 for unset cells, else a blob id."""
    h, w = mask.shape
    big = h * w + 1
    ids = np.arange(1, h * w + 1, dtype=np.int64).reshape(h, w)
    labels = np.where(mask, ids, big)
    while True:
        p = np.pad(labels, 1, constant_values=big)
        low = labels.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                np.minimum(low, p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w], out=low)
        low = np.where(mask, low, big)
        # Pointer jumping: a label is a cell id of the same blob; take that cell's label.
        flat = np.append(low.ravel(), big)
        low = np.where(mask, flat[np.minimum(low, big) - 1], big)
        if np.array_equal(low, labels):
            break
        labels = low
    return np.where(mask, labels, 0)


def grow(seeds: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """The blobs of ``weak | seeds`` that hold a seed cell (hysteresis thresholding)."""
    labels = label_blobs(weak | seeds)
    seeded = np.unique(labels[seeds])
    return np.isin(labels, seeded[seeded > 0])


def blob_box(mask: np.ndarray, min_cells: int = 1) -> tuple[int, int, int, int] | None:
    """Bounding box ``(x0, y0, x1, y1)`` (cells, end exclusive) of the significant blobs.

    Significant: at least ``min_cells`` cells and a tenth of the largest blob, so an
    item split in two by a background-coloured stripe is kept whole while a stray
    speck or a shadow corner is not.
    """
    labels = label_blobs(mask)
    ids, sizes = np.unique(labels[labels > 0], return_counts=True)
    if len(ids) == 0:
        return None
    keep = ids[(sizes >= max(min_cells, 0.1 * sizes.max()))]
    if len(keep) == 0:
        return None
    ys, xs = np.nonzero(np.isin(labels, keep))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def crop_box(
    box: tuple[int, int, int, int], shape: tuple[int, ...], margin: float, square: bool = True
) -> tuple[int, int, int, int]:
    """A pixel box grown by ``margin`` of its longer side on each side, optionally squared,
    and moved (not cut) to stay inside an image of ``shape`` where it fits."""
    h, w = shape[0], shape[1]
    x0, y0, x1, y1 = box
    bw, bh = max(1, x1 - x0), max(1, y1 - y0)
    pad = margin * max(bw, bh)
    cw, ch = bw + 2 * pad, bh + 2 * pad
    if square:
        cw = ch = min(max(cw, ch), w, h)
    cw, ch = min(cw, w), min(ch, h)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - cw / 2, 0), w - cw)))
    top = int(round(min(max(cy - ch / 2, 0), h - ch)))
    return left, top, min(w, left + int(round(cw))), min(h, top + int(round(ch)))
