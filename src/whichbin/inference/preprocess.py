"""Image → model input, from the bundle's preprocess spec. One implementation for training,
evaluation and the edge, so what is measured is what ships."""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

ResizeMode = Literal["squash", "center_crop"]


class PreprocessSpec(BaseModel):
    """How pixels become the network's input (stored as ``whichbin.preprocess``)."""

    model_config = ConfigDict(extra="forbid")
    size: int = Field(224, description="Square input side in pixels")
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    resize: ResizeMode = Field("squash", description="squash the whole frame, or center_crop")
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"


_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def resize_image(img: Image.Image, spec: PreprocessSpec) -> Image.Image:
    """Resize an RGB PIL image to the square input size."""
    s = spec.size
    if spec.resize == "center_crop":
        w, h = img.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    return img.resize((s, s), _RESAMPLE[spec.interpolation])


def to_tensor(imgs: list[Image.Image] | list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """RGB images (PIL or HxWx3 uint8 arrays) → float32 NCHW normalised batch."""
    arrs = []
    for im in imgs:
        pil = Image.fromarray(im) if isinstance(im, np.ndarray) else im
        if pil.mode != "RGB":
            pil = pil.convert("RGB")
        arrs.append(np.asarray(resize_image(pil, spec), dtype=np.float32))
    x = np.stack(arrs) / np.float32(255.0)
    mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(((x - mean) / std).transpose(0, 3, 1, 2), dtype=np.float32)
