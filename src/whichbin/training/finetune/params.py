"""What a fine-tuning run reads: the ``training`` config section, plus a fixed recipe.

Fine-tuning takes the :class:`~whichbin.config.TrainingConfig` itself (``mode``,
``finetune_*``, ``augment_*``, ``seed``, ``threads``...). :class:`Recipe` holds the few
hyperparameters that are not config keys: bench/finetune_compare.py tunes them, users
do not.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from whichbin.config import TrainingConfig
from whichbin.errors import ConfigError
from whichbin.inference import PreprocessSpec

Layers = list[tuple[np.ndarray, np.ndarray]]

# The training keys that shape a fine-tuning run (the rest are the head's).
FINETUNE_KEYS = (
    "mode",
    "backbone",
    "weights",
    "image_size",
    "resize",
    "finetune_from_block",
    "finetune_epochs",
    "augment_views",
    "augment_composite",
    "finetune_lr",
    "finetune_mixup",
    "finetune_tta_flip",
    "finetune_select",
    "finetune_members",
    "balance",
    "seed",
    "threads",
)
EXPORT_ONLY = ("finetune_tta_flip",)  # changing these re-exports the checkpoint, no retraining


class Row(Protocol):
    """What fine-tuning reads of a manifest row (``processing.manifest.ManifestRow``)."""

    path: Path
    label: str
    sha256: str


@dataclass(frozen=True)
class Recipe:
    """Fine-tuning hyperparameters that are not config keys."""

    batch_size: int = 48
    weight_decay: float = 0.02
    label_smoothing: float = 0.1
    dropout: float = 0.2
    warmup_epochs: float = 0.3
    probe_init: bool = True  # the classifier starts from a linear probe (LP-FT)
    aug_seed: int = 0  # augmented views; ensemble members add their index
    bf16: bool = False  # measured ~8x slower than fp32 on a CPU without AMX


def mode_of(cfg: TrainingConfig) -> Literal["partial", "full"]:
    """``training.mode`` as a fine-tuning mode.

    Raises:
        ConfigError: ``head`` (which does not fine-tune).
    """
    if cfg.mode == "head":
        raise ConfigError("training.mode: head does not fine-tune (use partial or full)")
    return cfg.mode


def first_trained_block(cfg: TrainingConfig) -> int:
    """``k``: blocks[k:] train (partial: ``finetune_from_block``; full: 0, everything)."""
    return cfg.finetune_from_block if mode_of(cfg) == "partial" else 0


def torch_threads(cfg: TrainingConfig) -> int:
    """``training.threads``, where 0 means all cores."""
    return cfg.threads or os.cpu_count() or 1


def finetune_settings(cfg: TrainingConfig, recipe: Recipe) -> dict[str, Any]:
    """Everything that shapes a fine-tuning run: its config keys and the recipe, flat."""
    return {**cfg.model_dump(include=set(FINETUNE_KEYS)), **asdict(recipe)}


def stable_hash(parts: Any) -> str:
    """A short hash of JSON-able ``parts`` (cache keys, checkpoint fingerprints)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class FinetuneResult:
    """What :func:`~whichbin.training.finetune.finetune` made.

    Attributes:
        bundle: ``out_dir/model.onnx`` with ``logits`` + ``embedding`` and BundleMeta
            (temperature 1: the pipeline calibrates on ``val_logits`` and rewrites it).
        layers: The classifier as head layers ``[(W, b)]`` (``export.replace_head`` form).
        preprocess: The bundle's preprocessing.
        history: Per epoch: ``train_loss``, ``val_loss``, ``val_acc`` (``report.plot_curves``).
        best_epoch: The epoch whose weights were exported (``finetune_select``).
        val_logits: Bundle logits on the validation images (ONNX Runtime).
        val_embeddings: Bundle embeddings of the validation images.
        seconds: Wall time per phase (``cache``, ``probe``, ``train``, ``export``, ``total``).
        epoch_seconds: Wall time of each epoch.
        resumed_after: Last epoch found in a checkpoint (0: a fresh run).
    """

    bundle: Path
    layers: Layers
    preprocess: PreprocessSpec
    history: dict[str, list[float]]
    best_epoch: int
    val_logits: np.ndarray
    val_embeddings: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)
    resumed_after: int = 0
