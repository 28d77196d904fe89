"""Decode one image for real, say what is wrong with it, and make it plain RGB and upright.

``inspect_image`` fully decodes (``load()`` with ``LOAD_TRUNCATED_IMAGES`` off, so a cut
JPEG raises instead of being padded with grey), reads the EXIF orientation and mode, and
computes the dihedral pHashes of the upright RGB picture. Its result depends only on the
file's bytes, so it is cached by sha256.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps

from whichbin.imageio import DEFAULT_LIMITS, ImageError, ImageLimits, open_image
from whichbin.processing.phash import GREY_SIZE, THUMB_SIZE, dihedral_hashes

CHECK_VERSION = 1  # bump when inspection or hashing changes: invalidates cached results
PLAIN_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP"})


@dataclass
class Inspection:
    """What decoding one file found.

    Attributes:
        sha256: Content hash the result belongs to.
        error: Quarantine reason (``code: detail``) when the file cannot be used at all.
        width: Upright width in pixels (0 when undecodable).
        height: Upright height in pixels.
        fixes: Normalisations needed (mode, EXIF orientation, format), empty if none.
        hashes: The 8 dihedral pHashes as 16-digit hex, upright first.
        thumb: 16x16 RGB thumbnail (uint8, base64) that confirms pHash near-duplicates.
    """

    sha256: str
    error: str | None = None
    width: int = 0
    height: int = 0
    fixes: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    thumb: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "v": CHECK_VERSION,
            "sha256": self.sha256,
            "error": self.error,
            "w": self.width,
            "h": self.height,
            "fixes": self.fixes,
            "phash": self.hashes,
            "thumb": self.thumb,
        }

    @classmethod
    def from_json(cls, r: dict[str, Any]) -> Inspection:
        return cls(r["sha256"], r["error"], r["w"], r["h"], r["fixes"], r["phash"], r["thumb"])

    def hash_ints(self) -> list[int]:
        return [int(h, 16) for h in self.hashes]

    def thumb_array(self) -> np.ndarray:
        raw = base64.b64decode(self.thumb)
        return np.frombuffer(raw, dtype=np.uint8).reshape(THUMB_SIZE, THUMB_SIZE, 3)


def too_small(insp: Inspection, min_side: int) -> str | None:
    """Quarantine reason when the shorter side is below ``min_side`` pixels."""
    if insp.error is None and min(insp.width, insp.height) < min_side:
        return f"too-small: {insp.width}x{insp.height} px, shorter side below {min_side} px"
    return None


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # noqa: BLE001 - broken EXIF is not a reason to reject the pixels
        return 1
    return value if isinstance(value, int) and 2 <= value <= 8 else 1


def needed_fixes(im: Image.Image) -> list[str]:
    """Normalisations this decoded image needs to become an upright RGB JPEG/PNG."""
    fixes = []
    if im.mode != "RGB":
        fixes.append(f"mode {im.mode}")
    orientation = _orientation(im)
    if orientation != 1:
        fixes.append(f"exif-orientation {orientation}")
    if im.format not in PLAIN_FORMATS:
        fixes.append(f"format {im.format}")
    return fixes


def to_rgb(im: Image.Image) -> Image.Image:
    """Plain 8-bit RGB: transparency composited on white, 16-bit scaled, CMYK/palette converted."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        a = np.asarray(im, dtype=np.float64)
        if mode.startswith("I;16") or a.max(initial=0) > 255:
            a = a / 257.0  # 16-bit range → 8-bit
        elif mode == "F" and a.max(initial=0) <= 1.0:
            a = a * 255.0
        return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
    return im.convert("RGB")


def upright_rgb(im: Image.Image) -> Image.Image:
    """EXIF orientation applied, then plain RGB."""
    if _orientation(im) != 1:
        im = ImageOps.exif_transpose(im)
    return to_rgb(im)


def image_hashes(rgb: Image.Image) -> list[str]:
    """Dihedral pHashes (hex) of an RGB image."""
    grey = rgb.convert("L").resize((GREY_SIZE, GREY_SIZE), Image.Resampling.LANCZOS)
    return [f"{h:016x}" for h in dihedral_hashes(np.asarray(grey, dtype=np.float64))]


def image_thumb(rgb: Image.Image) -> str:
    """16x16 area-averaged RGB thumbnail, base64 (the squashed square rotates with the image)."""
    small = rgb.resize((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BOX)
    return base64.b64encode(np.asarray(small, dtype=np.uint8).tobytes()).decode()


def inspect_image(path: Path, sha256: str, limits: ImageLimits = DEFAULT_LIMITS) -> Inspection:
    """Decode ``path`` completely (once its size is within ``limits``) and report problems,
    fixes and hashes. Never raises for a bad image: the problem becomes ``error``."""
    # PIL's default, but a process-wide switch: make sure nothing turned it on, otherwise
    # truncated JPEGs decode "successfully" with a grey bottom.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with open_image(path, limits) as im:
            im.load()
            fixes = needed_fixes(im)
            rgb = upright_rgb(im)
            width, height = rgb.size
            hashes = image_hashes(rgb)
            thumb = image_thumb(rgb)
    except ImageError as e:
        return Inspection(sha256, error=e.reason)
    return Inspection(sha256, None, width, height, fixes, hashes, thumb)


def normalised_copy(path: Path, limits: ImageLimits = DEFAULT_LIMITS) -> tuple[Image.Image, str]:
    """The upright RGB image and the format to save it in (JPEG stays JPEG, else PNG)."""
    with open_image(path, limits) as im:
        im.load()
        fmt = "JPEG" if im.format == "JPEG" else "PNG"
        return upright_rgb(im).copy(), fmt


def save_image(rgb: Image.Image, path: Path, fmt: str) -> None:
    """Write without EXIF (so no orientation tag survives); JPEG at quality 95."""
    if fmt == "JPEG":
        rgb.save(path, "JPEG", quality=95, subsampling=0)
    else:
        rgb.save(path, "PNG", optimize=False)
