"""``finetune``: one run (or an ensemble of runs) from the ``training`` section to a bundle."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from whichbin.config import TrainingConfig
from whichbin.errors import ConfigError
from whichbin.inference import BundleMeta
from whichbin.training.finetune.checkpoints import Checkpointer, TrainState, fingerprint
from whichbin.training.finetune.data import create_feed
from whichbin.training.finetune.ensemble import train_ensemble
from whichbin.training.finetune.export import bundle_outputs, export_bundle
from whichbin.training.finetune.loop import (
    create_optimizer,
    features_and_logits,
    fit_probe,
    train_one_epoch,
    validate,
)
from whichbin.training.finetune.nets import Trainable
from whichbin.training.finetune.params import (
    FinetuneResult,
    Recipe,
    Row,
    first_trained_block,
    torch_threads,
)

logger = logging.getLogger(__name__)
OnEpoch = Callable[[int, dict[str, list[float]]], None]


@dataclass(frozen=True)
class Job:
    """What every run of one :func:`finetune` call shares (see its arguments)."""

    rows_train: Sequence[Row]
    rows_val: Sequence[Row]
    labels: list[str]
    work_dir: Path
    meta: BundleMeta | None
    backgrounds: Sequence[Path]
    progress: bool
    on_epoch: OnEpoch | None


def finetune(
    cfg: TrainingConfig,
    rows_train: Sequence[Row],
    rows_val: Sequence[Row],
    labels: Sequence[str],
    work_dir: Path,
    out_dir: Path,
    meta: BundleMeta | None = None,
    backgrounds: Sequence[Path] = (),
    progress: bool = True,
    on_epoch: OnEpoch | None = None,
    recipe: Recipe = Recipe(),
) -> FinetuneResult:
    """Fine-tune the backbone and write ``out_dir/model.onnx``.

    Runs with ``cfg.threads`` torch threads (0: all cores), then restores the caller's
    count (torch's setting is process-wide).

    Args:
        cfg: The ``training`` section (``mode`` partial or full, ``finetune_*``, ...).
        rows_train: Training images (``path``, ``label``, ``sha256``).
        rows_val: Validation images: epoch selection and the returned ``val_logits``.
        labels: Label order of the logits.
        work_dir: Cache root shared by runs (the pipeline's ``<work>/cache``): activations
            and prefix graphs under ``finetune/``, downloaded weights under ``weights/``.
        out_dir: Checkpoint and bundle; keep it across a crash so a re-run resumes.
        meta: Bundle metadata (labels, bins, rules...); preprocess, backbone and created
            are filled in. Default: the bundled rule pack's bins.
        backgrounds: Pictures to composite objects onto (never test images).
        progress: Progress bars on a terminal (else log lines).
        on_epoch: Called after each epoch's checkpoint with (epoch, history).
        recipe: Hyperparameters that are not config keys.

    Raises:
        ConfigError: Bad settings, or a label without a rule (default meta).
    """
    first_trained_block(cfg)  # head mode: one line, before any work
    job = Job(
        rows_train, rows_val, list(labels), Path(work_dir), meta, backgrounds, progress, on_epoch
    )

    def run(c: TrainingConfig, r: Recipe, out: Path) -> FinetuneResult:
        return train_once(c, r, job, out)

    before = torch.get_num_threads()
    torch.set_num_threads(torch_threads(cfg))
    try:
        if cfg.finetune_members == 1:
            return run(cfg, recipe, Path(out_dir))
        return train_ensemble(
            cfg, recipe, run, Path(work_dir), Path(out_dir), labels, rows_val, meta
        )
    finally:
        torch.set_num_threads(before)


def train_once(cfg: TrainingConfig, recipe: Recipe, job: Job, out_dir: Path) -> FinetuneResult:
    """One fine-tuning run (:func:`finetune` without the ensemble) into ``out_dir``."""
    from whichbin.training.backbones import (
        create_backbone,
        get_backbone_spec,
        preprocess_for,
        weights_id,
    )

    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    rows_train, rows_val, labels, work_dir = job.rows_train, job.rows_val, job.labels, job.work_dir
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    y_tr, y_va = _targets(rows_train, labels), _targets(rows_val, labels)
    pre = preprocess_for(get_backbone_spec(cfg.backbone), cfg.image_size, cfg.resize)
    wid = weights_id(cfg.backbone, cfg.weights)
    model: Any
    model, _, _ = create_backbone(cfg.backbone, cfg.weights, work_dir)
    if not 1 <= cfg.finetune_from_block <= len(model.blocks):
        raise ConfigError(f"training.finetune_from_block: 1..{len(model.blocks)}")
    k = first_trained_block(cfg)
    torch.manual_seed(cfg.seed)  # the classifier's initial weights
    net = Trainable(model, k, len(labels), recipe.dropout)
    net = net.to(memory_format=torch.channels_last)  # measured faster for depthwise backward

    t0 = time.perf_counter()
    feed = create_feed(
        cfg, recipe, model, k, pre, wid, rows_train, rows_val, work_dir, job.backgrounds,
        job.progress,
    )  # fmt: skip
    seconds["cache"] = time.perf_counter() - t0

    opt, sched = create_optimizer(net, cfg, recipe, len(y_tr))
    saver = Checkpointer(out_dir, fingerprint(cfg, recipe, rows_train, rows_val, labels, wid))
    state = saver.restore(net, opt, sched)
    start = state.epoch
    cw_np = _class_weights(y_tr, len(labels), cfg.balance)
    t0 = time.perf_counter()
    if start == 0 and recipe.probe_init:
        f_tr, _ = features_and_logits(net, feed.plain, len(y_tr))
        fit_probe(net.fc, f_tr.astype(np.float64), y_tr, cw_np)
    seconds["probe"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cw = torch.tensor(cw_np, dtype=torch.float32)
    for epoch in range(start + 1, cfg.finetune_epochs + 1):
        te = time.perf_counter()
        loss = train_one_epoch(net, feed, y_tr, epoch, cfg, recipe, cw, opt, sched)
        vloss, vacc = validate(net, feed.val, y_va)
        _record(state, epoch, loss, vloss, vacc, time.perf_counter() - te, cfg.finetune_epochs)
        state.keep(net, epoch, vloss, vacc, last=cfg.finetune_select == "last")
        saver.save(net, opt, sched, state)
        if job.on_epoch is not None:
            job.on_epoch(epoch, state.history)
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    best = state.best
    if best["state"] is not None:
        net.load_state_dict(best["state"])
    bundle = export_bundle(model, net, k, pre, labels, job.meta, cfg, best, out_dir / "model.onnx")
    val_logits, val_emb = bundle_outputs(bundle, [r.path for r in rows_val])
    seconds["export"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_start
    history = state.history
    return FinetuneResult(
        bundle=bundle,
        layers=[(_numpy(net.fc.weight), _numpy(net.fc.bias))],
        preprocess=pre,
        history={k2: v for k2, v in history.items() if k2 != "seconds"},
        epoch_seconds=[round(v, 1) for v in history["seconds"]],
        best_epoch=int(best["epoch"]),
        val_logits=val_logits,
        val_embeddings=val_emb,
        seconds={k2: round(v, 2) for k2, v in seconds.items()},
        resumed_after=start,
    )


def _targets(rows: Sequence[Row], labels: list[str]) -> np.ndarray:
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.array([index[r.label] for r in rows], np.int64)
    if not len(y):
        raise ConfigError("fine-tuning needs training and validation images")
    return y


def _class_weights(y: np.ndarray, n: int, balance: bool) -> np.ndarray:
    from whichbin.training.heads import class_weights

    return class_weights(y, n) if balance else np.ones(n)


def _record(
    state: TrainState,
    epoch: int,
    loss: float,
    vloss: float,
    vacc: float,
    seconds: float,
    epochs: int,
) -> None:
    """Append the epoch to the history and log it."""
    state.epoch = epoch
    for name, v in (
        ("train_loss", loss),
        ("val_loss", vloss),
        ("val_acc", vacc),
        ("seconds", seconds),
    ):
        state.history[name].append(v)
    logger.info(
        "fine-tuning epoch %d/%d: train loss %.3f, val loss %.3f, val acc %.3f (%.0f s)",
        epoch, epochs, loss, vloss, vacc, seconds,
    )  # fmt: skip


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float32)
