"""The parts of bench/finetune_compare.py: method names and their fine-tuning settings,
the TrashNet split of a seed, the cross-source set, running and evaluating one method, and the
summary over seeds."""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import SHARED

from whichbin.config import DataConfig
from whichbin.evaluation.metrics import classification_metrics
from whichbin.inference import BundleMeta
from whichbin.processing.prepare import prepare_dataset
from whichbin.progress import silent_reporter
from whichbin.rules import load_rules

RULES = load_rules()


def backgrounds(n: int = 150) -> tuple[list[Path], list[Path]]:
    """Two disjoint sets of extra/ photos (by file-name hash): training backgrounds and
    held-out backgrounds for the cross-source test."""
    files = sorted((SHARED / "extra").rglob("*.jpg"))
    h = [int(hashlib.sha256(f.name.encode()).hexdigest()[:8], 16) for f in files]
    a = [f for f, v in zip(files, h, strict=True) if v % 2 == 0]
    b = [f for f, v in zip(files, h, strict=True) if v % 2 == 1]
    rng = np.random.default_rng(123)
    return (
        [a[i] for i in sorted(rng.choice(len(a), n, replace=False))],
        [b[i] for i in sorted(rng.choice(len(b), n, replace=False))],
    )


def cross_source_set(test: list, held_out: list[Path]) -> tuple[list[int], list[Any]]:
    """Test images whose object can be cut out, composited on held-out backgrounds (the same
    pictures for every method). Returns (indices into test, images)."""
    from whichbin.training.augment import composite_on, object_mask
    from whichbin.training.embeddings import load_rgb
    from whichbin.training.finetune import load_backgrounds

    bgs = load_backgrounds(held_out, side=384)
    keep, imgs = [], []
    for i, r in enumerate(test):
        img = load_rgb(r.path)
        mask = object_mask(img)
        if mask is None:
            continue
        rng = np.random.default_rng([7, int(r.sha256[:15], 16)])
        imgs.append(composite_on(img, bgs[int(rng.integers(len(bgs)))], rng, mask))
        keep.append(i)
    return keep, imgs


def metrics_on(bundle: Path, images: list, y: np.ndarray, labels: list[str]) -> dict[str, Any]:
    from whichbin.inference import OnnxClassifier

    clf = OnnxClassifier(bundle)
    probs = np.concatenate([clf.probs(images[i : i + 32]) for i in range(0, len(images), 32)])
    m = classification_metrics(y, probs, labels, RULES.restricted_to(labels))
    return {
        k: m[k] for k in ("n", "accuracy", "macro_f1", "bin_accuracy", "bin_recall", "label_recall")
    }


def evaluate(bundle: Path, test: list, labels: list[str], cross: tuple) -> dict[str, Any]:
    """In-source (all test images, and the cut-out subset) and cross-source metrics."""
    from whichbin.training.embeddings import load_rgb

    index = {lab: i for i, lab in enumerate(labels)}
    y = np.array([index[r.label] for r in test])
    plain = [load_rgb(r.path) for r in test]
    keep, composited = cross
    return {
        "test": metrics_on(bundle, plain, y, labels),
        "test_cutout_subset": metrics_on(bundle, [plain[i] for i in keep], y[keep], labels),
        "cross_source": metrics_on(bundle, composited, y[keep], labels),
    }


def frozen_embeddings(work: Path, rows: list) -> tuple[np.ndarray, Path, float]:
    """Frozen Lite0 embeddings through the project's ONNX backbone and embedding cache."""
    from whichbin.training.backbones import BACKBONES, preprocess_for, weights_id
    from whichbin.training.embeddings import (
        EmbeddingCache,
        OnnxEncoder,
        compute_embeddings,
        embedding_key,
    )
    from whichbin.training.export import export_backbone_onnx

    pre = preprocess_for(BACKBONES["efficientnet_lite0"], 224, "squash")
    backbone = work / "backbone.onnx"
    t0 = time.perf_counter()
    if not backbone.is_file():
        export_backbone_onnx("efficientnet_lite0", None, 224, backbone, work / "cache")
    cache = EmbeddingCache(work / "cache" / "embeddings.sqlite")
    key = embedding_key(weights_id("efficientnet_lite0", None), pre)
    emb = compute_embeddings(
        [r.path for r in rows], [r.sha256 for r in rows], OnnxEncoder(backbone, pre, 2), cache, key
    )
    cache.close()
    return emb, backbone, time.perf_counter() - t0


def meta_for(labels: list[str], name: str) -> BundleMeta:
    from whichbin.training.backbones import BACKBONES, preprocess_for

    return BundleMeta(
        labels=labels,
        bins=RULES.restricted_to(labels),
        preprocess=preprocess_for(BACKBONES["efficientnet_lite0"], 224, "squash"),
        version=name,
        backbone="efficientnet_lite0",
    )


def run_frozen(method: str, ctx: dict[str, Any], out: Path) -> dict[str, Any]:
    """(a) StandardScaler + sklearn LogisticRegression, or (b) the numpy head."""
    from whichbin.training.export import build_bundle
    from whichbin.training.heads import train_head

    emb, y, split = ctx["emb"], ctx["y"], ctx["split"]
    tr, va = split == "train", split == "val"
    t0 = time.perf_counter()
    if method == "lr":
        from sklearn.linear_model import LogisticRegression

        mu, sd = emb[tr].mean(0), emb[tr].std(0) + 1e-6
        clf = LogisticRegression(max_iter=3000, C=1.0)
        clf.fit((emb[tr] - mu) / sd, y[tr])
        w = clf.coef_ / sd
        layers = [(w.astype(np.float32), (clf.intercept_ - w @ mu).astype(np.float32))]
    else:
        res = train_head(emb[tr], y[tr], len(ctx["labels"]), emb[va], y[va], epochs=300, lr=0.05)
        layers = res.layers
    fit = time.perf_counter() - t0
    bundle = build_bundle(ctx["backbone"], layers, meta_for(ctx["labels"], method), out)
    return {
        "seconds": {"fit": round(fit, 2), "embed_all_images_once": ctx["embed_s"]},
        "bundle": bundle,
    }


# Per-method overrides of the defaults, ":"-separated after the method name, e.g.
# partial:b4:e12:c0.2:tta — b from_block, e epochs, v views, c augment_composite,
# r image_size, lr learning rate, m mixup, ls label_smoothing, n ensemble members,
# tta flip averaging, last
# (export the last epoch, not the best on val), val0.05 (validation share; same test split),
# lite1 / lite2 (backbone efficientnet_lite1/2 at its own input size unless r is given).
OVERRIDES = {  # training config keys, and the Recipe's label_smoothing
    "b": ("finetune_from_block", int),
    "e": ("finetune_epochs", int),
    "v": ("augment_views", int),
    "c": ("augment_composite", float),
    "r": ("image_size", int),
    "lr": ("finetune_lr", float),
    "m": ("finetune_mixup", float),
    "ls": ("label_smoothing", float),
    "n": ("finetune_members", int),
}
RECIPE_KEYS = {"label_smoothing"}


VAL = 0.15  # the validation share unless a method says ``val<fraction>``


def val_fraction(method: str) -> float:
    """The validation share a method name asks for (``...:val0.05``; default ``VAL``).
    The test split depends only on the seed and the test share, so it is the same."""
    for opt in method.split(":")[1:]:
        if opt.startswith("val"):
            return float(opt[3:])
    return VAL


def seed_context(work: Path, seed: int, val: float, train_bg: list[Path]) -> dict[str, Any]:
    """The prepared TrashNet split of one seed (val share ``val``, test 0.15)."""
    name = "dataset" if val == VAL else f"dataset-val{val:g}"
    prepared = prepare_dataset(
        [SHARED / "trashnet"],
        work / name,
        DataConfig(val=val, test=0.15, seed=seed),
        silent_reporter,
    )
    rows, labels = prepared.rows, list(prepared.labels)
    index = {lab: i for i, lab in enumerate(labels)}
    return {
        "rows": rows,
        "labels": labels,
        "test": [r for r in rows if r.split == "test"],
        "y": np.array([index[r.label] for r in rows]),
        "split": np.array([r.split for r in rows]),
        "train_bg": train_bg,
    }


def finetune_params(method: str, args: argparse.Namespace) -> tuple[Any, Any]:
    """The ``training`` config and the Recipe of a method name (see OVERRIDES; legacy:
    partial_noaug (no augmented views), partial_b4 (from block 4), partial_procbg
    (procedural backgrounds only))."""
    import re

    from whichbin.config import TrainingConfig
    from whichbin.training.finetune import Recipe

    base, *opts = method.split(":")
    if base.startswith("partial"):
        kw: dict[str, Any] = {
            "mode": "partial",
            "finetune_from_block": 4 if base.endswith("_b4") else args.from_block,
            "finetune_epochs": args.epochs,
            "augment_views": 0 if base.endswith("_noaug") else args.views,
            "finetune_lr": args.lr,
            "augment_composite": args.composite,
            "image_size": args.size,
            "finetune_mixup": args.mixup,
            "finetune_tta_flip": args.tta,
        }
    else:
        kw = {
            "mode": "full",
            "image_size": args.full_size,
            "finetune_epochs": args.full_epochs,
            "finetune_lr": args.full_lr,
        }
    for opt in opts:
        if opt.startswith("val"):  # the split, not a fine-tuning setting (val_fraction)
            continue
        if opt in ("tta", "notta"):
            kw["finetune_tta_flip"] = opt == "tta"
            continue
        if opt in ("last", "best"):
            kw["finetune_select"] = opt
            continue
        if opt in ("lite0", "lite1", "lite2"):
            from whichbin.training.backbones import get_backbone_spec

            kw["backbone"] = f"efficientnet_{opt}"
            if not any(o.startswith("r") and o[1:].isdigit() for o in opts):
                kw["image_size"] = get_backbone_spec(kw["backbone"]).default_size
            continue
        m = re.fullmatch(r"([a-z]+)([0-9.e-]+)", opt)
        if m is None or m.group(1) not in OVERRIDES:
            raise SystemExit(f"unknown method option {opt!r} in {method!r}")
        name, cast = OVERRIDES[m.group(1)]
        kw[name] = cast(m.group(2))
    recipe = {k: kw.pop(k) for k in RECIPE_KEYS & kw.keys()}
    return TrainingConfig(**kw), Recipe(**recipe)


def settings_of(params: tuple[Any, Any]) -> dict[str, Any]:
    """A method's fine-tuning settings, flat (what a result records as ``params``)."""
    from whichbin.training.finetune import finetune_settings

    return finetune_settings(*params)


def same_params(old: dict[str, Any] | None, new: tuple[Any, Any]) -> bool:
    """Whether a kept result used ``new``'s settings (a field added since then counts as
    its default)."""
    from whichbin.config import TrainingConfig
    from whichbin.training.finetune import Recipe

    if old is None:
        return False
    defaults = settings_of((TrainingConfig(), Recipe()))
    return all(old.get(k, defaults[k]) == v for k, v in settings_of(new).items())


def run_finetune(method: str, ctx: dict[str, Any], out: Path, args: argparse.Namespace) -> dict:
    from whichbin.training.finetune import finetune

    rows = ctx["rows"]
    tr = [r for r in rows if r.split == "train"]
    va = [r for r in rows if r.split == "val"]
    p = finetune_params(method, args)
    t0 = time.perf_counter()
    res = finetune(
        p[0],
        tr,
        va,
        ctx["labels"],
        args.work,
        out.parent / out.stem,
        meta_for(ctx["labels"], method),
        backgrounds=[] if method.split(":")[0].endswith("_procbg") else ctx["train_bg"],
        progress=False,
        recipe=p[1],
    )
    return {
        "seconds": {**res.seconds, "wall": round(time.perf_counter() - t0, 1)},
        "params": settings_of(p),
        "history": res.history,
        "epoch_seconds": res.epoch_seconds,
        "best_epoch": res.best_epoch,
        "bundle": res.bundle,
    }


def summarise(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over seeds per method."""
    out: dict[str, Any] = {}
    by: dict[str, list[dict[str, Any]]] = {}
    for r in results.values():
        by.setdefault(r["method"], []).append(r)
    for method, rs in sorted(by.items()):
        s: dict[str, Any] = {"seeds": [r["seed"] for r in rs]}
        for part in ("test", "test_cutout_subset", "cross_source"):
            for key in ("accuracy", "bin_accuracy", "macro_f1"):
                v = np.array([r["metrics"][part][key] for r in rs])
                s[f"{part}.{key}"] = {
                    "mean": round(float(v.mean()), 4),
                    "std": round(float(v.std()), 4),
                    "per_seed": [round(float(x), 4) for x in v],
                }
            bins = rs[0]["metrics"][part]["bin_recall"]
            s[f"{part}.bin_recall"] = {
                b: round(float(np.mean([r["metrics"][part]["bin_recall"][b] for r in rs])), 4)
                for b in bins
            }
        s["train_images"] = int(np.mean([r["split"]["train"] for r in rs]))
        walls = [r["seconds"].get("wall", r["seconds"].get("fit")) for r in rs]
        s["seconds_mean"] = round(float(np.mean(walls)), 1)
        # every member's epochs, also those resumed from a checkpoint (their wall is not in
        # this run's): the training cost of the method
        epochs = [sum(r.get("epoch_seconds") or []) for r in rs]
        s["epoch_seconds_mean"] = round(float(np.mean(epochs)), 1)
        out[method] = s
    return out
