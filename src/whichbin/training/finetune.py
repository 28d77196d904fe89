"""Fine-tuning the backbone on a 2-core CPU, exported as one SPEC bundle.

``partial`` (the default): the frozen early part of the network (stem and
``blocks[:from_block]``) runs once per (image, augmented view) through ONNX Runtime; its
fp16 activations are cached on disk (:class:`ActivationStore`), and only the last blocks,
``conv_head``/``bn2`` and a linear classifier are trained on them, for a few epochs.
``full``: every layer trains on augmented images at a reduced resolution.

Both: AdamW with warm-up and a cosine schedule, label smoothing, class-balanced loss, the
classifier initialised from a linear probe (LP-FT, which keeps pretrained features intact
better and so generalises better out of distribution), a checkpoint each epoch in
``out_dir`` that a re-run resumes from, and a bundle with ``logits`` and ``embedding``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import partial, wraps
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from PIL import Image
from torch import nn

from whichbin.errors import ConfigError
from whichbin.inference import BundleMeta, PreprocessSpec, now_iso, to_tensor, write_meta
from whichbin.training.activations import ActivationStore, cache_activations, thumb
from whichbin.training.augment import AUGMENT_VERSION, augment, object_mask
from whichbin.training.embeddings import load_rgb

logger = logging.getLogger(__name__)
Layers = list[tuple[np.ndarray, np.ndarray]]


class Row(Protocol):
    """What fine-tuning reads of a manifest row (``processing.manifest.ManifestRow``)."""

    path: Path
    label: str
    sha256: str


# ---------------------------------------------------------------- building blocks


class Trainable(nn.Module):
    """The trained part: blocks[k:] (k = 0: also the stem), conv_head, bn2, classifier."""

    def __init__(self, model: Any, k: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        self.stem = nn.Sequential(model.conv_stem, model.bn1) if k == 0 else nn.Identity()
        self.blocks = nn.Sequential(*model.blocks[k:])
        self.conv_head, self.bn2 = model.conv_head, model.bn2
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(int(model.num_features), n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding [N, D]."""
        return self.bn2(self.conv_head(self.blocks(self.stem(x)))).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.features(x)))


def _prefix(model: Any, k: int) -> nn.Module:
    """The frozen part: stem and blocks[:k] (nothing when k = 0)."""
    if k == 0:
        return nn.Identity()
    return nn.Sequential(model.conv_stem, model.bn1, *model.blocks[:k])


class BundleNet(nn.Module):
    """Frozen prefix + trained part(s), returning (logits, embedding) for the bundle.

    With ``tta_flip`` the graph also runs the horizontally flipped image (one batch of
    2 N) and returns the mean embedding and its logits: test-time augmentation inside the
    bundle, at twice the inference cost.

    Several trained parts (an ensemble sharing the prefix) give the concatenation of their
    embeddings and one linear classifier on it, ``[W1 .. Wn] / n`` and the mean bias, whose
    logits are the mean of the members' logits; ``retrain-head`` can still replace it.
    """

    def __init__(
        self,
        model: Any,
        k: int,
        trained: Trainable | Sequence[Trainable],
        tta_flip: bool = False,
    ) -> None:
        super().__init__()
        parts = [trained] if isinstance(trained, Trainable) else list(trained)
        self.prefix, self.parts, self.tta_flip = _prefix(model, k), nn.ModuleList(parts), tta_flip
        self.members = parts  # the same modules, typed
        self.fc = parts[0].fc if len(parts) == 1 else merged_classifier([p.fc for p in parts])

    def features(self, act: torch.Tensor) -> torch.Tensor:
        return torch.cat([p.features(act) for p in self.members], 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.tta_flip:
            emb = self.features(self.prefix(torch.cat([x, torch.flip(x, [3])])))
            emb = emb.reshape(2, -1, emb.shape[1]).mean(0)
        else:
            emb = self.features(self.prefix(x))
        return self.fc(emb), emb


def merged_classifier(fcs: Sequence[nn.Linear]) -> nn.Linear:
    """One linear layer on the concatenated inputs whose output is the mean of ``fcs``."""
    n = len(fcs)
    out = nn.Linear(sum(f.in_features for f in fcs), fcs[0].out_features)
    with torch.no_grad():
        out.weight.copy_(torch.cat([f.weight for f in fcs], 1) / n)
        out.bias.copy_(torch.stack([f.bias for f in fcs]).mean(0))
    return out


def export_prefix_onnx(model: Any, k: int, size: int, out: Path) -> Path:
    """The frozen prefix as ONNX (input → ``act``), written once per cache key."""
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with torch.no_grad():
        torch.onnx.export(
            _prefix(model, k).eval(),
            (torch.zeros(1, 3, size, size),),
            str(tmp),
            input_names=["input"],
            output_names=["act"],
            dynamic_axes={"input": {0: "N"}, "act": {0: "N"}},
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(out)
    return out


def load_backgrounds(paths: Sequence[Path], side: int = 320) -> list[Image.Image]:
    """Background pictures, decoded once and shrunk."""
    out = []
    for p in paths:
        img = load_rgb(Path(p))
        img.thumbnail((side, side), Image.Resampling.BILINEAR)
        out.append(img)
    return out


def pick_backgrounds(rows: Sequence[Row], n: int = 150, seed: int = 0) -> list[Path]:
    """Up to ``n`` training photos that are not board photos (no object can be cut out of
    them): backgrounds to composite board objects onto. Looks at most ``4 n`` images."""
    rng = np.random.default_rng(seed)
    out: list[Path] = []
    for i in rng.permutation(len(rows))[: 4 * n]:
        if len(out) >= n:
            break
        img = load_rgb(rows[int(i)].path)
        img.thumbnail((256, 256))
        if object_mask(img) is None:
            out.append(rows[int(i)].path)
    return sorted(out)


def lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to zero, per optimiser step."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + float(np.cos(np.pi * min(1.0, (step - warmup) / max(1, total - warmup)))))

    return f


@dataclass(frozen=True)
class FinetuneParams:
    """Fine-tuning settings (proposed ``training.*`` config fields in brackets)."""

    mode: Literal["partial", "full"] = "partial"  # [mode: head|partial|full]
    backbone: str = "efficientnet_lite0"
    weights: str | None = None
    image_size: int | None = None  # input side (None: the backbone's own, Lite0 224);
    # full mode: use 160-192 on a CPU
    resize: Literal["squash", "center_crop"] = "squash"
    from_block: int = 4  # [finetune_from_block] blocks[from_block:] train (partial)
    epochs: int = 8  # [finetune_epochs]
    views: int = 2  # [augment_views] augmented views per training image (+ the plain one)
    p_composite: float = 0.5  # [augment_composite] paste board objects on backgrounds
    batch_size: int = 48
    lr: float = 1e-3  # [finetune_lr] backbone; the classifier gets 2x
    weight_decay: float = 0.02
    label_smoothing: float = 0.1
    balance: bool = True
    dropout: float = 0.2
    warmup_epochs: float = 0.3
    mixup: float = 0.0  # [finetune_mixup] Beta(a, a) mixup of cached activations; 0: off
    tta_flip: bool = False  # [finetune_tta_flip] bundle averages image and its mirror
    select: Literal["best", "last"] = "best"  # [finetune_select] epoch exported: best val
    # accuracy (ties: lower val loss), or the last one (the cosine schedule ends at lr 0)
    members: int = 1  # [finetune_members] ensemble: members trained with their own seeds
    # and augmented views, one bundle sharing the frozen prefix (n x the training time)
    probe_init: bool = True
    seed: int = 0
    aug_seed: int = 0
    threads: int = 2
    bf16: bool = False  # measured ~8x slower than fp32 on a CPU without AMX

    @classmethod
    def from_training(cls, t: Any, **overrides: Any) -> FinetuneParams:
        """From a ``TrainingConfig`` (fields missing there keep their defaults here)."""
        names = {
            "mode": "mode",
            "backbone": "backbone",
            "weights": "weights",
            "image_size": "image_size",
            "resize": "resize",
            "from_block": "finetune_from_block",
            "epochs": "finetune_epochs",
            "views": "augment_views",
            "p_composite": "augment_composite",
            "lr": "finetune_lr",
            "mixup": "finetune_mixup",
            "tta_flip": "finetune_tta_flip",
            "select": "finetune_select",
            "members": "finetune_members",
            "balance": "balance",
            "seed": "seed",
        }
        kw = {k: getattr(t, v) for k, v in names.items() if getattr(t, v, None) is not None}
        if kw.get("mode") not in ("partial", "full"):  # "head" is not a fine-tuning mode
            kw.pop("mode", None)
        kw["threads"] = getattr(t, "threads", 0) or 2
        kw.update(overrides)
        return cls(**kw)


@dataclass
class FinetuneResult:
    """What :func:`finetune` made.

    Attributes:
        bundle: ``out_dir/model.onnx`` with ``logits`` + ``embedding`` and BundleMeta
            (temperature 1: the pipeline calibrates on ``val_logits`` and rewrites it).
        layers: The classifier as head layers ``[(W, b)]`` (``export.replace_head`` form).
        preprocess: The bundle's preprocessing.
        history: Per epoch: ``train_loss``, ``val_loss``, ``val_acc`` (``report.plot_curves``).
        best_epoch: The epoch whose weights were exported (``params.select``).
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


def _hash(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _class_weights(y: np.ndarray, n: int, balance: bool) -> np.ndarray:
    from whichbin.training.heads import class_weights

    return class_weights(y, n) if balance else np.ones(n)


def _own_torch_threads(fn: Callable[..., FinetuneResult]) -> Callable[..., FinetuneResult]:
    """Run ``fn(params, ...)`` with ``params.threads`` torch threads, then restore the
    caller's count (torch's setting is process-wide)."""

    @wraps(fn)
    def run(params: FinetuneParams, *args: Any, **kwargs: Any) -> FinetuneResult:
        before = torch.get_num_threads()
        torch.set_num_threads(params.threads)
        try:
            return fn(params, *args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return run


@_own_torch_threads
def finetune(
    params: FinetuneParams,
    rows_train: Sequence[Row],
    rows_val: Sequence[Row],
    labels: Sequence[str],
    work_dir: Path,
    out_dir: Path,
    meta: BundleMeta | None = None,
    backgrounds: Sequence[Path] = (),
    progress: bool = True,
    on_epoch: Callable[[int, dict[str, list[float]]], None] | None = None,
) -> FinetuneResult:
    """Fine-tune the backbone and write ``out_dir/model.onnx``.

    Args:
        params: Settings (:meth:`FinetuneParams.from_training` maps a TrainingConfig).
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

    Raises:
        ConfigError: Bad settings, or a label without a rule (default meta).
    """

    def run(p: FinetuneParams, out: Path) -> FinetuneResult:
        return _train(
            p, rows_train, rows_val, labels, work_dir, out, meta, backgrounds, progress, on_epoch
        )

    if params.members == 1:
        return run(params, Path(out_dir))
    return _ensemble(params, run, Path(work_dir), Path(out_dir), labels, rows_val, meta)


def _ensemble(
    params: FinetuneParams,
    run: Callable[[FinetuneParams, Path], FinetuneResult],
    work_dir: Path,
    out_dir: Path,
    labels: Sequence[str],
    rows_val: Sequence[Row],
    meta: BundleMeta | None,
) -> FinetuneResult:
    """``params.members`` runs of :func:`_train` (seed and augmentation seed of their own,
    each resumable under ``out_dir/member-<i>``), merged into one bundle."""
    import copy

    from whichbin.training.backbones import create_backbone

    t0 = time.perf_counter()
    runs = []
    for i in range(params.members):
        member = replace(
            params, members=1, seed=params.seed + 1000 * i, aug_seed=params.aug_seed + i
        )
        logger.info("fine-tuning: ensemble member %d/%d", i + 1, params.members)
        runs.append(run(member, out_dir / f"member-{i}"))
    t1 = time.perf_counter()
    model, _, _ = create_backbone(params.backbone, params.weights, work_dir)
    k = params.from_block if params.mode == "partial" else 0
    parts = []
    for i in range(params.members):
        part = Trainable(copy.deepcopy(model), k, len(labels), params.dropout)
        ck = torch.load(out_dir / f"member-{i}" / "checkpoint.pt", weights_only=False)
        part.load_state_dict(ck["best"]["state"] or ck["model"])
        parts.append(part.eval())
    accs = [r.history["val_acc"][r.best_epoch - 1] for r in runs]
    best = {"epoch": [r.best_epoch for r in runs], "acc": float(np.mean(accs))}
    bundle = _export(
        model, parts, k, runs[0].preprocess, list(labels), meta, params, best,
        out_dir / "model.onnx",
    )  # fmt: skip
    val_logits, val_emb = _bundle_outputs(bundle, [r.path for r in rows_val])
    fc = merged_classifier([p.fc for p in parts])
    seconds = {key: round(sum(r.seconds.get(key, 0.0) for r in runs), 2) for key in runs[0].seconds}
    seconds["merge"] = round(time.perf_counter() - t1, 2)
    seconds["total"] = round(time.perf_counter() - t0, 2)
    return FinetuneResult(
        bundle=bundle,
        layers=[(fc.weight.detach().numpy(), fc.bias.detach().numpy())],
        preprocess=runs[0].preprocess,
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


def _train(
    params: FinetuneParams,
    rows_train: Sequence[Row],
    rows_val: Sequence[Row],
    labels: Sequence[str],
    work_dir: Path,
    out_dir: Path,
    meta: BundleMeta | None = None,
    backgrounds: Sequence[Path] = (),
    progress: bool = True,
    on_epoch: Callable[[int, dict[str, list[float]]], None] | None = None,
) -> FinetuneResult:
    """One fine-tuning run (:func:`finetune` without the ensemble)."""
    from whichbin.training.backbones import (
        create_backbone,
        get_backbone_spec,
        preprocess_for,
        weights_id,
    )

    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    work_dir, out_dir = Path(work_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = list(labels)
    index = {lab: i for i, lab in enumerate(labels)}
    y_tr = np.array([index[r.label] for r in rows_train], np.int64)
    y_va = np.array([index[r.label] for r in rows_val], np.int64)
    if not len(y_tr) or not len(y_va):
        raise ConfigError("fine-tuning needs training and validation images")
    spec = get_backbone_spec(params.backbone)
    pre = preprocess_for(spec, params.image_size, params.resize)
    wid = weights_id(params.backbone, params.weights)
    model: Any
    model, _, _ = create_backbone(params.backbone, params.weights, work_dir)
    if not 1 <= params.from_block <= len(model.blocks):
        raise ConfigError(f"training.finetune_from_block: 1..{len(model.blocks)}")
    bgs = load_backgrounds(backgrounds)
    k = params.from_block if params.mode == "partial" else 0
    torch.manual_seed(params.seed)  # the classifier's initial weights
    net = Trainable(model, k, len(labels), params.dropout)
    net = net.to(memory_format=torch.channels_last)  # measured faster for depthwise backward

    # ---- data: cached activations (partial) or decoded images (full)
    t0 = time.perf_counter()
    if params.mode == "partial":
        aug: dict[str, Any] = {
            "v": AUGMENT_VERSION,
            "seed": params.aug_seed,
            "p": params.p_composite,
        }
        aug["bg"] = _hash([(str(b), Path(b).stat().st_size) for b in backgrounds])
        key = _hash({"w": wid, "pre": pre.model_dump(mode="json"), "k": k, "aug": aug})
        prefix_onnx = export_prefix_onnx(model, k, pre.size, work_dir / "finetune" / f"{key}.onnx")
        store = ActivationStore(work_dir / "finetune" / f"acts-{key}")
        items: dict[str, tuple[Path, list[int]]] = {}
        for r in rows_val:
            items[r.sha256] = (r.path, [0])
        for r in rows_train:
            items[r.sha256] = (r.path, list(range(params.views + 1)))
        cache_activations(store, prefix_onnx, items, params, pre, bgs, progress)
        reader = store.reader()
        va_rows = np.array([store.row(r.sha256, 0) for r in rows_val])
        tr_rows = np.array(
            [[store.row(r.sha256, v) for v in range(params.views + 1)] for r in rows_train]
        )

        def train_x(idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            pick = tr_rows[idx, rng.integers(0, params.views + 1, len(idx))]
            return reader(pick)

        def val_x(idx: np.ndarray) -> np.ndarray:
            return reader(va_rows[idx])

        def plain_x(idx: np.ndarray) -> np.ndarray:
            return reader(tr_rows[idx, 0])
    else:
        side = int(pre.size * 1.5)
        imgs_tr = [thumb(load_rgb(r.path), side) for r in rows_train]
        x_val = to_tensor([load_rgb(r.path) for r in rows_val], pre)

        def train_x(idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            seeds = rng.integers(0, 2**63, len(idx))
            views = [
                augment(imgs_tr[i], np.random.default_rng(s), bgs, params.p_composite)
                for i, s in zip(idx, seeds, strict=True)
            ]
            return to_tensor(views, pre)

        def val_x(idx: np.ndarray) -> np.ndarray:
            return x_val[idx]

        def plain_x(idx: np.ndarray) -> np.ndarray:
            return to_tensor([imgs_tr[i] for i in idx], pre)

    seconds["cache"] = time.perf_counter() - t0

    def run(xfn: Callable[[np.ndarray], np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
        """(features, logits) in eval mode over n items."""
        net.eval()
        feats, logits = [], []
        with torch.no_grad():
            for i in range(0, n, 64):
                x = _tensor(xfn(np.arange(i, min(n, i + 64))))
                f = net.features(x)
                feats.append(f.numpy())
                logits.append(net.fc(f).numpy())
        return np.concatenate(feats), np.concatenate(logits)

    # ---- checkpoint / resume
    export_only = ("tta_flip",)  # changing these re-exports the checkpoint, no retraining
    fingerprint = _hash(
        {
            "p": {k2: v for k2, v in asdict(params).items() if k2 not in export_only},
            "train": [r.sha256 for r in rows_train],
            "val": [r.sha256 for r in rows_val],
            "labels": labels,
            "w": wid,
        }
    )
    ckpt_path = out_dir / "checkpoint.pt"
    steps_per_epoch = (len(y_tr) + params.batch_size - 1) // params.batch_size
    head_params = list(net.fc.parameters())
    head_ids = {id(q) for q in head_params}
    body = [q for q in net.parameters() if id(q) not in head_ids]
    opt = torch.optim.AdamW(
        [{"params": body, "lr": params.lr}, {"params": head_params, "lr": 2 * params.lr}],
        weight_decay=params.weight_decay,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lr_lambda(int(params.warmup_epochs * steps_per_epoch), params.epochs * steps_per_epoch),
    )
    history: dict[str, list[float]] = {
        "train_loss": [],
        "val_loss": [],
        "val_acc": [],
        "seconds": [],
    }
    best: dict[str, Any] = {"acc": -1.0, "loss": np.inf, "epoch": 0, "state": None}
    start = 0
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ck.get("fingerprint") == fingerprint:
            net.load_state_dict(ck["model"])
            opt.load_state_dict(ck["opt"])
            sched.load_state_dict(ck["sched"])
            history, best, start = ck["history"], ck["best"], int(ck["epoch"])
            logger.info("fine-tuning: resuming after epoch %d from %s", start, ckpt_path)
        else:
            logger.info("fine-tuning: %s is from other settings or data; starting over", ckpt_path)

    cw_np = _class_weights(y_tr, len(labels), params.balance)
    cw = torch.tensor(cw_np, dtype=torch.float32)
    t0 = time.perf_counter()
    if start == 0 and params.probe_init:
        f_tr, _ = run(plain_x, len(y_tr))
        _fit_probe(net.fc, f_tr.astype(np.float64), y_tr, cw_np)
    seconds["probe"] = time.perf_counter() - t0

    # ---- training
    t0 = time.perf_counter()
    for epoch in range(start + 1, params.epochs + 1):
        te = time.perf_counter()
        rng = np.random.default_rng([params.seed, epoch])
        torch.manual_seed(params.seed * 1000 + epoch)
        order = rng.permutation(len(y_tr))
        batches = [
            order[i : i + params.batch_size] for i in range(0, len(order), params.batch_size)
        ]
        if len(batches) > 1 and len(batches[-1]) < 2:  # BatchNorm needs two samples
            batches[-2] = np.concatenate([batches[-2], batches.pop()])
        mix_rng = np.random.default_rng([params.seed, epoch, 1])  # train_x's rng is threaded
        net.train()
        losses = []
        for idx, x in _prefetch(batches, partial(train_x, rng=rng)):
            targets = [(1.0, torch.from_numpy(y_tr[idx]))]
            if params.mixup > 0:
                lam, perm = _mixup_draw(mix_rng, params.mixup, len(idx))
                x = lam * x + (1 - lam) * x[perm]
                targets = [(lam, targets[0][1]), (1 - lam, targets[0][1][perm])]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=params.bf16):
                logits = net(_tensor(x))
            loss = sum(
                w
                * torch.nn.functional.cross_entropy(
                    logits.float(), t, weight=cw, label_smoothing=params.label_smoothing
                )
                for w, t in targets
            )
            assert isinstance(loss, torch.Tensor)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        _, lv = run(val_x, len(y_va))
        vloss = float(
            torch.nn.functional.cross_entropy(torch.from_numpy(lv), torch.from_numpy(y_va))
        )
        vacc = float(np.mean(lv.argmax(1) == y_va))
        for name, v in (
            ("train_loss", float(np.mean(losses))),
            ("val_loss", vloss),
            ("val_acc", vacc),
            ("seconds", time.perf_counter() - te),
        ):
            history[name].append(v)
        if params.select == "last" or (vacc, -vloss) > (best["acc"], -best["loss"]):
            state = {k2: v.detach().clone() for k2, v in net.state_dict().items()}
            best = {"acc": vacc, "loss": vloss, "epoch": epoch, "state": state}
        logger.info(
            "fine-tuning epoch %d/%d: train loss %.3f, val loss %.3f, val acc %.3f (%.0f s)",
            epoch,
            params.epochs,
            history["train_loss"][-1],
            vloss,
            vacc,
            history["seconds"][-1],
        )
        ck = {
            "fingerprint": fingerprint,
            "epoch": epoch,
            "model": net.state_dict(),
            "opt": opt.state_dict(),
            "sched": sched.state_dict(),
            "history": history,
            "best": best,
        }
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(ck, tmp)
        tmp.replace(ckpt_path)
        if on_epoch is not None:
            on_epoch(epoch, history)
    seconds["train"] = time.perf_counter() - t0

    # ---- export
    t0 = time.perf_counter()
    if best["state"] is not None:
        net.load_state_dict(best["state"])
    bundle = _export(model, net, k, pre, labels, meta, params, best, out_dir / "model.onnx")
    val_logits, val_emb = _bundle_outputs(bundle, [r.path for r in rows_val])
    seconds["export"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_start
    w = net.fc.weight.detach().numpy().astype(np.float32)
    b = net.fc.bias.detach().numpy().astype(np.float32)
    return FinetuneResult(
        bundle=bundle,
        layers=[(w, b)],
        preprocess=pre,
        history={k2: v for k2, v in history.items() if k2 != "seconds"},
        epoch_seconds=[round(v, 1) for v in history["seconds"]],
        best_epoch=int(best["epoch"]),
        val_logits=val_logits,
        val_embeddings=val_emb,
        seconds={k2: round(v, 2) for k2, v in seconds.items()},
        resumed_after=start,
    )


def _mixup_draw(rng: np.random.Generator, alpha: float, n: int) -> tuple[float, np.ndarray]:
    """A mixup weight (``max(lam, 1 - lam)``: each example stays the main one) and a
    pairing permutation."""
    lam = float(rng.beta(alpha, alpha))
    return max(lam, 1 - lam), rng.permutation(n)


def _fit_probe(
    fc: nn.Linear, feats: np.ndarray, y: np.ndarray, cw: np.ndarray, steps: int = 300
) -> None:
    """Linear probe on frozen features (full-batch Adam in numpy: torch's per-op overhead
    dominates at this size), the classifier's starting point."""
    c = fc.out_features
    w, b = np.zeros((c, feats.shape[1])), np.zeros(c)
    sw = cw[y] / cw[y].sum()
    onehot = np.eye(c)[y]
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    for t in range(1, steps + 1):
        z = feats @ w.T + b
        p = np.exp(z - z.max(1, keepdims=True))
        g = (p / p.sum(1, keepdims=True) - onehot) * sw[:, None]
        for i, grad in enumerate((g.T @ feats + 2e-3 * w, g.sum(0))):
            m[i] = 0.9 * m[i] + 0.1 * grad
            v[i] = 0.999 * v[i] + 0.001 * grad * grad
            step = 1e-2 * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)
            if i == 0:
                w -= step
            else:
                b -= step
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(w.astype(np.float32)))
        fc.bias.copy_(torch.from_numpy(b.astype(np.float32)))


def _tensor(x: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return t.contiguous(memory_format=torch.channels_last)


def _prefetch(
    batches: list[np.ndarray], load: Callable[[np.ndarray], np.ndarray]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Load the next batch in a thread while the current one trains."""
    if not batches:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        nxt = pool.submit(load, batches[0])
        for i, idx in enumerate(batches):
            x = nxt.result()
            if i + 1 < len(batches):
                nxt = pool.submit(load, batches[i + 1])
            yield idx, x


def _export(
    model: Any,
    net: Any,
    k: int,
    pre: PreprocessSpec,
    labels: list[str],
    meta: BundleMeta | None,
    params: FinetuneParams,
    best: dict[str, Any],
    out: Path,
) -> Path:
    from whichbin.training.export import export_module_onnx

    if meta is None:
        from whichbin.rules import load_rules

        meta = BundleMeta(labels=labels, bins=load_rules().restricted_to(labels))
    meta = meta.model_copy(
        update={
            "labels": labels,
            "preprocess": pre,
            "created": meta.created or now_iso(),
            "backbone": f"{params.backbone}+{params.mode}-ft",
            "metrics": {
                **meta.metrics,
                "finetune": {
                    "mode": params.mode,
                    "from_block": k,
                    "epochs": params.epochs,
                    "best_epoch": best["epoch"],
                    "val_acc": best["acc"],
                    "tta_flip": params.tta_flip,
                    "members": params.members,
                },
            },
        }
    )
    export_module_onnx(BundleNet(model, k, net, params.tta_flip).eval(), pre.size, out)
    write_meta(out, meta)
    return out


def _bundle_outputs(
    bundle: Path, paths: Sequence[Path], batch: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """(logits, embeddings) of a bundle on image files, with ONNX Runtime."""
    from whichbin.inference import OnnxClassifier

    clf = OnnxClassifier(bundle)
    logits, embs = [], []
    for i in range(0, len(paths), batch):
        lg, emb = clf.run([load_rgb(p) for p in paths[i : i + batch]], with_embedding=True)
        assert emb is not None  # export_module_onnx always writes the embedding output
        logits.append(lg)
        embs.append(emb)
    return np.concatenate(logits), np.concatenate(embs)
