"""Training-time image augmentation for photos taken outside the studio (numpy + PIL).

TrashNet shows one object on a white poster board, so a model can learn "white board" as
part of every TrashNet label. :func:`object_mask` cuts the object out of the board,
:func:`composite_on` pastes it onto another background, and :func:`augment` adds the
usual crop, flip, colour, blur and noise jitter. Everything is pure given the ``rng``:
the same generator state gives the same picture, so augmented views can be cached.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

AUGMENT_VERSION = 2  # bump when the output for a given rng changes (cache keys use it)

_MASK_SIDE = 128  # the mask is computed on a copy this long, then scaled up


def _fit_plane(xs: np.ndarray, ys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares a + b x + c y + d x² + e y² per channel; returns coefficients [5, C]."""
    design = np.stack([np.ones_like(xs), xs, ys, xs * xs, ys * ys], axis=1)
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    return coef


def object_mask(
    img: Image.Image,
    min_area: float = 0.04,
    max_area: float = 0.85,
    max_border: float = 0.35,
) -> Image.Image | None:
    """Alpha mask ("L", image size) of the object on a plain light board, or None.

    The board's colour is modelled as a smooth quadratic surface fitted to the border
    pixels (it carries shading and colour casts); pixels far from it are the object. After
    closing, hole filling and opening, the mask is refused (None) when the border does not
    look like a board, or when the object is implausibly small, large, or covers too much
    of the border (it then fills the frame: nothing to cut out).
    """
    small = img.convert("RGB")
    small.thumbnail((_MASK_SIDE, _MASK_SIDE), Image.Resampling.BILINEAR)
    a = np.asarray(small, np.float32) / 255.0
    h, w, _ = a.shape
    if h < 16 or w < 16:
        return None
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx, yy = xx / w - 0.5, yy / h - 0.5
    b = max(2, min(h, w) // 16)
    border = np.zeros((h, w), bool)
    border[:b], border[-b:], border[:, :b], border[:, -b:] = True, True, True, True
    mx, mn = a.max(2), a.min(2)
    sat = (mx - mn) / np.maximum(mx, 1e-3)
    light = (sat < 0.2) & (mx > 0.35)
    if (light & border).sum() < 0.5 * border.sum():
        return None  # the border is not a light, grey board
    # Two passes: fit on light border pixels, then refit on those close to the first fit.
    sel = border & light
    coef = _fit_plane(xx[sel], yy[sel], a[sel])
    for _ in range(2):
        design = np.stack([np.ones_like(xx), xx, yy, xx * xx, yy * yy], axis=-1)
        bg = design @ coef
        dist = np.sqrt(((a - bg) ** 2).sum(-1))
        sel = border & (dist < 0.12)
        if sel.sum() < 0.3 * border.sum():
            return None
        coef = _fit_plane(xx[sel], yy[sel], a[sel])
    design = np.stack([np.ones_like(xx), xx, yy, xx * xx, yy * yy], axis=-1)
    bg = design @ coef
    dist = np.sqrt(((a - bg) ** 2).sum(-1))
    # Shadows are darker and colourless: a larger distance is needed to count them.
    darker_only = (a.mean(-1) < bg.mean(-1)) & (sat < 0.2)
    fg = dist > np.where(darker_only, 0.22, 0.12)
    m = Image.fromarray((fg * 255).astype(np.uint8))
    m = m.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.MinFilter(5))  # close gaps
    m = _fill_holes(m)
    m = m.filter(ImageFilter.MinFilter(5)).filter(ImageFilter.MaxFilter(5))  # drop specks
    mask = np.asarray(m) > 127
    area = mask.mean()
    edge = mask[border].mean()
    if not (min_area <= area <= max_area) or edge > max_border:
        return None
    full = m.resize(img.size, Image.Resampling.BILINEAR)
    return full.filter(ImageFilter.GaussianBlur(max(1.0, img.size[0] / 300)))


def _fill_holes(mask: Image.Image) -> Image.Image:
    """Fill background regions not connected to the border (e.g. board seen through glass)."""
    import cv2  # a C flood fill: PIL's is pure Python and 1000x slower

    padded = np.pad(np.asarray(mask, np.uint8), 1)
    flood = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, flood, (0, 0), 128)
    return Image.fromarray(np.where(padded[1:-1, 1:-1] == 128, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- backgrounds


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A plausible surface colour: mostly muted, sometimes dark or saturated."""
    base = rng.uniform(0.1, 0.95)
    tint = rng.normal(0, rng.choice([0.05, 0.15, 0.3]), 3)
    return np.clip(base + tint, 0, 1)


def _value_noise(rng: np.random.Generator, w: int, h: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a coarse random grid scaled up bicubically."""
    grid = rng.random((cells, max(2, int(cells * w / h))))
    img = Image.fromarray((grid * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img, np.float32) / 255.0


def procedural_background(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A random surface: flat colour, gradient, wood-like stripes, noise or tiles."""
    out_size = size
    scale = min(1.0, 160 / max(size))  # drawn small, then scaled up: 10x cheaper
    w, h = max(2, int(size[0] * scale)), max(2, int(size[1] * scale))
    kind = rng.choice(["flat", "gradient", "wood", "noise", "tiles"])
    c1, c2 = _colour(rng), _colour(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    along = (xx * np.cos(angle) + yy * np.sin(angle)) / max(w, h)
    if kind == "flat":
        t = np.zeros((h, w), np.float32)
    elif kind == "gradient":
        t = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
    elif kind == "wood":
        c1 = np.array([rng.uniform(0.35, 0.75), rng.uniform(0.2, 0.5), rng.uniform(0.05, 0.3)])
        c2 = c1 * rng.uniform(0.5, 0.8)
        warp = _value_noise(rng, w, h, int(rng.integers(3, 8))) * rng.uniform(2, 8)
        t = 0.5 + 0.5 * np.sin(along * rng.uniform(20, 80) + warp)
        t = t ** rng.uniform(1, 4)
    elif kind == "noise":
        t = _value_noise(rng, w, h, int(rng.integers(4, 64)))
    else:  # tiles with grout lines
        step = int(rng.integers(max(4, min(w, h) // 8), max(5, min(w, h) // 2)))
        line = max(1, step // 12)
        t = (((xx % step) < line) | ((yy % step) < line)).astype(np.float32)
    img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    img = img + rng.normal(0, rng.uniform(0, 0.04), img.shape)  # sensor-like grain
    out = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    return out.resize(out_size, Image.Resampling.BILINEAR)


def _background(
    rng: np.random.Generator, size: tuple[int, int], backgrounds: Sequence[Image.Image] | None
) -> Image.Image:
    if backgrounds and rng.random() < 0.5:
        return random_crop_to(backgrounds[int(rng.integers(len(backgrounds)))], size, rng)
    return procedural_background(rng, size)


def random_crop_to(
    img: Image.Image, size: tuple[int, int], rng: np.random.Generator
) -> Image.Image:
    """A random crop of ``img`` with the aspect ratio of ``size``, resized to ``size``."""
    w, h = img.size
    tw, th = size
    scale = rng.uniform(0.4, 1.0)
    cw = min(w, int(round(min(w, h * tw / th) * scale)))
    ch = min(h, max(1, int(round(cw * th / tw))))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    return img.convert("RGB").crop((x0, y0, x0 + cw, y0 + ch)).resize(size)


# ---------------------------------------------------------------- compositing


def composite_on(
    img: Image.Image,
    background: Image.Image,
    rng: np.random.Generator,
    mask: Image.Image | None = None,
) -> Image.Image:
    """The object of a board photo pasted on ``background``, moved, scaled, with a soft
    shadow; ``img`` itself (as RGB) when no plausible mask is found.

    Args:
        img: A photo of one object on a plain light board (TrashNet style).
        background: Any picture; a random crop of it fills the frame.
        rng: Randomness for the crop, placement, scale and shadow.
        mask: A precomputed :func:`object_mask` of ``img`` (computed when None).
    """
    img = img.convert("RGB")
    mask = mask if mask is not None else object_mask(img)
    if mask is None:
        return img
    w, h = img.size
    bg = random_crop_to(background, (w, h), rng)
    s = rng.uniform(0.7, 1.05)
    ow, oh = max(1, int(w * s)), max(1, int(h * s))
    obj, alpha = img.resize((ow, oh)), mask.resize((ow, oh))
    x0 = int(rng.integers(min(0, w - ow), max(0, w - ow) + 1))
    y0 = int(rng.integers(min(0, h - oh), max(0, h - oh) + 1))
    if rng.random() < 0.6:  # a soft drop shadow under the object
        shadow = alpha.filter(ImageFilter.GaussianBlur(max(2, w // 40)))
        strength = rng.uniform(0.2, 0.5)
        shadow = shadow.point(lambda v: int(v * strength))
        dx, dy = (int(v) for v in rng.integers(-w // 30, w // 30 + 1, 2))
        bg.paste(Image.new("RGB", (ow, oh), (0, 0, 0)), (x0 + dx, y0 + dy), shadow)
    bg.paste(obj, (x0, y0), alpha)
    return bg


# ---------------------------------------------------------------- photometric


def random_resized_crop(
    img: Image.Image, rng: np.random.Generator, scale: tuple[float, float] = (0.45, 1.0)
) -> Image.Image:
    """A crop covering ``scale`` of the area with an aspect ratio in [3/4, 4/3] (not resized:
    preprocessing resizes to the model input)."""
    w, h = img.size
    for _ in range(10):
        area = w * h * rng.uniform(*scale)
        ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = int(round(np.sqrt(area * ratio))), int(round(np.sqrt(area / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return img.crop((x0, y0, x0 + cw, y0 + ch))
    return img


def colour_jitter(img: Image.Image, rng: np.random.Generator, strength: float = 0.3) -> Image.Image:
    """Brightness, contrast, saturation and white-balance jitter."""
    lo, hi = 1 - strength, 1 + strength
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(lo, hi))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(lo, hi))
    img = ImageEnhance.Color(img).enhance(rng.uniform(lo, hi))
    gains = rng.uniform(1 - strength / 3, 1 + strength / 3, 3)  # white balance
    lut = [min(255, int(v * g)) for g in gains for v in range(256)]
    return img.point(lut)


def augment(
    img: Image.Image,
    rng: np.random.Generator,
    backgrounds: list[Image.Image] | None = None,
    p_composite: float = 0.5,
    mask: Image.Image | None | Literal["auto"] = "auto",
) -> Image.Image:
    """One random training view of an image.

    With probability ``p_composite`` the object is cut from its board and pasted on a
    random background (procedural, or a crop of one of ``backgrounds``); photos without
    a plausible board mask keep their own background. Then a random resized crop, flips
    and quarter turns, colour jitter, and sometimes blur, noise and JPEG re-encoding.

    Args:
        img: RGB photo.
        rng: The only source of randomness (same state, same output).
        backgrounds: Extra background pictures to crop from (never the test images).
        p_composite: Probability of compositing.
        mask: The :func:`object_mask` of ``img`` if already known (None: it has none);
            ``"auto"`` computes it when compositing.
    """
    img = img.convert("RGB")
    if rng.random() < p_composite:
        m = object_mask(img) if mask == "auto" else mask
        if m is not None:
            img = composite_on(img, _background(rng, img.size, backgrounds), rng, m)
    img = random_resized_crop(img, rng)
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.25:
        img = img.transpose(
            [Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270][
                int(rng.integers(3))
            ]
        )
    img = colour_jitter(img, rng)
    if rng.random() < 0.2:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.8)))
    if rng.random() < 0.2:
        a = np.asarray(img, np.float32) + rng.normal(0, rng.uniform(2, 10), (*img.size[::-1], 3))
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if rng.random() < 0.2:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(30, 85)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


VIEWS = 6  # fixed_views() returns this many pictures


def fixed_views(img: Image.Image) -> list[Image.Image]:
    """Six deterministic views of a photo (mirrors, quarter turns, a centre crop and its
    mirror): a site's few own photos stand for more of the ways an item lies in view."""
    img = img.convert("RGB")
    w, h = img.size
    crop = img.crop((w // 10, h // 10, w - w // 10, h - h // 10))
    t = Image.Transpose
    return [
        img.transpose(t.FLIP_LEFT_RIGHT),
        img.transpose(t.FLIP_TOP_BOTTOM),
        img.transpose(t.ROTATE_90),
        img.transpose(t.ROTATE_270),
        crop,
        crop.transpose(t.FLIP_LEFT_RIGHT),
    ]
