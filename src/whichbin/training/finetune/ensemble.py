"""An ensemble: members trained with their own seeds and augmented views, merged into one
bundle that shares the frozen prefix."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from whichbin.config import TrainingConfig
from whichbin.inference import BundleMeta
from whichbin.training.finetune.checkpoints import kept_weights
from whichbin.training.finetune.export import bundle_outputs, export_bundle
from whichbin.training.finetune.nets import Trainable, merged_classifier
from whichbin.training.finetune.params import (
    FinetuneResult,
    Recipe,
    Row,
    first_trained_block,
)

logger = logging.getLogger(__name__)
RunMember = Callable[[TrainingConfig, Recipe, Path], FinetuneResult]


def train_ensemble(
    cfg: TrainingConfig,
    recipe: Recipe,
    run: RunMember,
    work_dir: Path,
    out_dir: Path,
    labels: Sequence[str],
    rows_val: Sequence[Row],
    meta: BundleMeta | None,
) -> FinetuneResult:
    """``finetune_members`` runs (seed and augmentation seed of their own, each resumable
    under ``out_dir/member-<i>``), merged into one bundle."""
    from whichbin.training.backbones import create_backbone

    t0 = time.perf_counter()
    n = cfg.finetune_members
    runs = []
    for i in range(n):
        member = cfg.model_copy(update={"finetune_members": 1, "seed": cfg.seed + 1000 * i})
        logger.info("fine-tuning: ensemble member %d/%d", i + 1, n)
        runs.append(
            run(member, replace(recipe, aug_seed=recipe.aug_seed + i), out_dir / f"member-{i}")
        )
    t1 = time.perf_counter()
    model, _, _ = create_backbone(cfg.backbone, cfg.weights, work_dir)
    k = first_trained_block(cfg)
    parts = []
    for i in range(n):
        part = Trainable(copy.deepcopy(model), k, len(labels), recipe.dropout)
        part.load_state_dict(kept_weights(out_dir / f"member-{i}"))
        parts.append(part.eval())
    accs = [r.history["val_acc"][r.best_epoch - 1] for r in runs]
    best = {"epoch": [r.best_epoch for r in runs], "acc": float(np.mean(accs))}
    pre = runs[0].preprocess
    bundle = export_bundle(
        model, parts, k, pre, list(labels), meta, cfg, best, out_dir / "model.onnx"
    )
    val_logits, val_emb = bundle_outputs(bundle, [r.path for r in rows_val])
    fc = merged_classifier([p.fc for p in parts])
    seconds = {key: round(sum(r.seconds.get(key, 0.0) for r in runs), 2) for key in runs[0].seconds}
    seconds["merge"] = round(time.perf_counter() - t1, 2)
    seconds["total"] = round(time.perf_counter() - t0, 2)
    return FinetuneResult(
        bundle=bundle,
        layers=[(fc.weight.detach().numpy(), fc.bias.detach().numpy())],
        preprocess=pre,
        history={
            key: [float(v) for v in np.mean([r.history[key] for r in runs], 0)]
            for key in runs[0].history
        },
        epoch_seconds=[round(float(v), 1) for v in np.sum([r.epoch_seconds for r in runs], 0)],
        best_epoch=runs[0].best_epoch,
        val_logits=val_logits,
        val_embeddings=val_emb,
        seconds=seconds,
        resumed_after=runs[0].resumed_after,
    )
