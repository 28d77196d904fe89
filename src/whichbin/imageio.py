"""The one place image files are opened: bytes and pixels are checked before decoding.

Every reader of image files (``data check``, ``classify``, the edge's folder and stills
sources, training and evaluation) goes through :func:`open_image`, so a decompression
bomb, a 13000x13000 PNG that would need gigabytes, or a text file named ``.jpg`` is one
:class:`ImageError` naming the file, never a traceback or an out-of-memory kill.

The pixel count comes from the header (Pillow opens lazily and decodes nothing until
``load()``), the byte count from ``stat``. Limits default to well under a Raspberry Pi's
memory (a 40 MP RGB image is 120 MB decoded); ``data.max_image_pixels`` and
``data.max_image_bytes`` change them for ``data check``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from whichbin.errors import DataError

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 50_000_000
_MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG": "PNG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
# What Pillow raises for a file it cannot decode (struct.error: short TIFF/BMP headers).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)


@dataclass(frozen=True)
class ImageLimits:
    """Largest image file accepted: pixels (width x height, from the header) and bytes."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES


DEFAULT_LIMITS = ImageLimits()


class ImageError(DataError):
    """An image file that cannot be used; ``reason`` is ``code: detail`` (quarantine reason).

    Codes: ``unreadable``, ``empty``, ``too-large``, ``not-an-image``, ``corrupt``,
    ``truncated``.
    """

    def __init__(self, path: Path, code: str, detail: str) -> None:
        self.path = Path(path)
        self.code = code
        self.detail = " ".join(detail.split())  # one line, whatever Pillow said
        super().__init__(f"{path}: {self.reason}")

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.detail}"


def sniff_format(path: Path) -> str | None:
    """The image format the file's first bytes announce, or None."""
    with Path(path).open("rb") as f:
        head = f.read(16)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((k for magic, k in _MAGIC.items() if head.startswith(magic)), None)


def _too_many_pixels(path: Path, width: int, height: int, limits: ImageLimits) -> ImageError:
    return ImageError(
        path,
        "too-large",
        f"{width}x{height} px ({width * height / 1e6:.1f} MP) is above the limit of "
        f"{limits.max_pixels / 1e6:g} MP (data.max_image_pixels)",
    )


def decode_error(path: Path, e: BaseException, limits: ImageLimits = DEFAULT_LIMITS) -> ImageError:
    """The ImageError for an exception Pillow raised while opening or decoding ``path``."""
    if isinstance(e, ImageError):
        return e
    if isinstance(e, Image.DecompressionBombError):
        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(found.group(1)) / 1e6:.1f} MP" if found else "too many pixels"
        return ImageError(
            path,
            "too-large",
            f"{size} is above the limit of {limits.max_pixels / 1e6:g} MP (data.max_image_pixels)",
        )
    if isinstance(e, PermissionError | FileNotFoundError | IsADirectoryError):
        return ImageError(path, "unreadable", e.strerror or type(e).__name__)
    if isinstance(e, UnidentifiedImageError):
        try:
            kind = sniff_format(path)
            with Path(path).open("rb") as f:
                head = f.read(24)
        except OSError as oe:
            return ImageError(path, "unreadable", oe.strerror or type(oe).__name__)
        if kind is None:
            return ImageError(path, "not-an-image", f"no known image format (starts with {head!r})")
        return ImageError(path, "corrupt", f"{kind} header but cannot be decoded")
    message = str(e) or type(e).__name__
    return ImageError(path, "truncated" if "truncated" in message.lower() else "corrupt", message)


@contextmanager
def open_image(path: Path, limits: ImageLimits = DEFAULT_LIMITS) -> Iterator[Image.Image]:
    """The image, opened lazily (header read, no pixels decoded), once its size is allowed.

    Decoding errors raised inside the ``with`` block (``load()``, ``convert()``...) become
    an :class:`ImageError` too.

    Raises:
        ImageError: unreadable, empty, over ``limits``, not an image, corrupt or truncated.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ImageError(path, "unreadable", e.strerror or type(e).__name__) from e
    if size == 0:
        raise ImageError(path, "empty", "the file has 0 bytes")
    if size > limits.max_bytes:
        raise ImageError(
            path,
            "too-large",
            f"{size / 1e6:.1f} MB is above the limit of {limits.max_bytes / 1e6:g} MB "
            "(data.max_image_bytes)",
        )
    try:
        im = Image.open(path)
    except (*_DECODE_ERRORS, Image.DecompressionBombError) as e:
        raise decode_error(path, e, limits) from e
    try:
        width, height = im.size
        if width * height > limits.max_pixels:
            raise _too_many_pixels(path, width, height, limits)
        yield im
    except (*_DECODE_ERRORS, Image.DecompressionBombError) as e:
        raise decode_error(path, e, limits) from e
    finally:
        im.close()


def load_rgb(path: Path, limits: ImageLimits = DEFAULT_LIMITS) -> Image.Image:
    """Decode an image file as RGB (size-checked first).

    Raises:
        ImageError: the file is not a usable image (message names it and says why).
    """
    with open_image(path, limits) as im:
        return im.convert("RGB")
