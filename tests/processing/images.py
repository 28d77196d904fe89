"""Small generated images for the processing tests: distinct photo-like pictures and the
awkward kinds real collections contain (grey, CMYK, transparent, 16-bit, EXIF-rotated)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def photo_array(seed: int, size: tuple[int, int] = (96, 72)) -> np.ndarray:
    """H x W x 3 uint8: a smooth random colour field plus noise, different for every seed."""
    rng = np.random.default_rng(seed)
    low = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    arr = np.asarray(low.resize(size, Image.Resampling.BICUBIC), dtype=np.float64)
    arr = arr + rng.normal(0, 3, arr.shape)
    return np.clip(arr, 0, 255).astype(np.uint8)


def photo(path: Path, seed: int, size: tuple[int, int] = (96, 72), **save: object) -> Path:
    """Write a distinct photo-like image (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo_array(seed, size)).save(path, quality=92, **save)
    return path


def image_tree(root: Path, labels: dict[str, int], seed: int = 0) -> Path:
    """``root/<label>/<label>_<i>.jpg`` with ``labels[label]`` distinct images each."""
    for li, (label, n) in enumerate(sorted(labels.items())):
        for i in range(n):
            photo(root / label / f"{label}_{i}.jpg", seed=seed + 1000 * li + i)
    return root


def noisy_jpeg_bytes(size: int = 256, seed: int = 0) -> bytes:
    """A large, incompressible JPEG (noise), so cutting its bytes cuts into the scan data."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
        buf, "JPEG", quality=90
    )
    return buf.getvalue()


def two_tone(size: tuple[int, int] = (80, 40)) -> Image.Image:
    """Left half red, right half blue: shows which way an image was turned."""
    w, h = size
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    arr[:, : w // 2] = (230, 20, 20)
    arr[:, w // 2 :] = (20, 20, 230)
    return Image.fromarray(arr)


def huge_png(path: Path, width: int, height: int, rows: int = 4) -> Path:
    """A PNG whose header says ``width`` x ``height`` (greyscale) but which holds only
    ``rows`` rows of pixels: the header alone tells an opener how big it would be."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (rows * (width + 1)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path
