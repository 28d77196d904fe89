"""The ``[train]`` extra (torch, timm, the backbone weights packages) and its boundary.

The core install trains head-only on the bundled model's backbone with numpy, onnx and
ONNX Runtime. Fine-tuning, or a backbone built from PyTorch weights, needs the extra;
asking for either without it is one line saying which extra to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from whichbin.errors import ConfigError

if TYPE_CHECKING:
    from whichbin.config import TrainingConfig

TRAIN_EXTRA = "pip install 'whichbin[train]'"


def torch_asked_by(t: TrainingConfig) -> str | None:
    """The setting that needs torch (``training.mode: partial``, ...), or None."""
    if t.mode != "head":
        return f"training.mode: {t.mode} (fine-tuning)"
    if not t.base_model:
        return f"training.backbone: {t.backbone} from its PyTorch weights"
    return None


def require_train_extra(t: TrainingConfig) -> None:
    """Raise a one-line ConfigError naming the extra when ``t`` needs torch and it (or timm)
    cannot be imported; called before any data is prepared."""
    what = torch_asked_by(t)
    if what is None:
        return
    try:
        for module in ("torch", "timm"):
            importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(
            f"{what} needs PyTorch ({e.name or 'torch'} is not installed): {TRAIN_EXTRA}; or "
            "leave training.mode, training.backbone and training.base_model unset to retrain "
            "the head on the bundled model without torch"
        ) from e
