"""TrashNet (6 labels): frozen features + logistic regression, the numpy head, partial and
full fine-tuning; test accuracy measured with ONNX Runtime on each exported bundle, wall
time of each, and a cross-source figure (TrashNet test objects cut from their board and
composited on photo backgrounds never used in training).

Splits come from ``prepare_dataset`` (val 0.15, test 0.15, stratified, near-duplicates
grouped) with seeds 0, 1, 2. Each (method, seed) result is kept under ``--work`` so an
interrupted run continues where it stopped.

Usage:
  nice -n 10 python bench/finetune_compare.py [--seeds 0,1,2] [--methods lr,head,partial,full]
      [--full-seeds 0] [--work /tmp/whichbin-bench-ft]
  nice -n 10 python bench/finetune_compare.py --all-data   # timing on trashnet + extra
  nice -n 10 python bench/finetune_compare.py --seeds 0 --methods partial:b4:e12:tta
      # one-off settings after the method name (see OVERRIDES)

A kept result whose fine-tuning settings differ from the current ones is run again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

# Sleep rather than spin in OpenMP barriers: on a shared 2-core machine a spinning torch
# thread waiting for one that lost its core was measured 4x slower per step.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED, write_result  # noqa: E402

from whichbin.config import DataConfig  # noqa: E402
from whichbin.evaluation.metrics import classification_metrics  # noqa: E402
from whichbin.inference import BundleMeta  # noqa: E402
from whichbin.processing.prepare import prepare_dataset  # noqa: E402
from whichbin.progress import silent_reporter  # noqa: E402
from whichbin.rules import load_rules  # noqa: E402

logger = logging.getLogger("finetune_compare")
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


def all_data(args: argparse.Namespace) -> None:
    """Time the recommended partial fine-tuning on all shared data (pipeline-sized)."""
    from whichbin.training.finetune import finetune

    t0 = time.perf_counter()
    prepared = prepare_dataset(
        [SHARED / "trashnet", SHARED / "extra"],
        args.work / "dataset-all",
        DataConfig(),
        silent_reporter,
    )
    prep_s = time.perf_counter() - t0
    labels = list(prepared.labels)
    rows = prepared.rows
    tr = [r for r in rows if r.split == "train"]
    va = [r for r in rows if r.split == "val"]
    te = [r for r in rows if r.split == "test"]
    p = finetune_params(
        args.methods.split(",")[0] if args.methods.startswith("partial") else "partial", args
    )
    t0 = time.perf_counter()
    res = finetune(
        p[0],
        tr,
        va,
        labels,
        args.work,
        args.work / "out" / "all-data",
        meta_for(labels, "all"),
        backgrounds=backgrounds()[0],
        progress=False,
        recipe=p[1],
    )
    wall = time.perf_counter() - t0
    from whichbin.evaluation.evaluate import evaluate_bundle

    t1 = time.perf_counter()
    m = evaluate_bundle(res.bundle, [r.path for r in te], [r.label for r in te], RULES)
    write_result(
        "finetune_all_data",
        {
            "images": {"train": len(tr), "val": len(va), "test": len(te)},
            "prepare_seconds": round(prep_s, 1),
            "finetune_wall_seconds": round(wall, 1),
            "finetune_seconds": res.seconds,
            "evaluate_seconds": round(time.perf_counter() - t1, 1),
            "params": settings_of(p),
            "history": res.history,
            "epoch_seconds": res.epoch_seconds,
            "test": {k: m[k] for k in ("n", "accuracy", "macro_f1", "bin_accuracy", "bin_recall")},
        },
    )


def parser() -> argparse.ArgumentParser:
    """The command line; its defaults are the recipe a bare method name means."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/whichbin-bench-ft"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default="lr,head,partial,full")
    ap.add_argument("--full-seeds", default="0", help="seeds for the (slow) full fine-tuning")
    ap.add_argument("--from-block", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--composite", type=float, default=0.5, help="augment_composite")
    ap.add_argument("--size", type=int, default=224, help="partial: image size")
    ap.add_argument("--mixup", type=float, default=0.0, help="partial: activation mixup")
    ap.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="partial: the bundle averages the image and its mirror",
    )
    ap.add_argument("--full-size", type=int, default=176)
    ap.add_argument("--full-epochs", type=int, default=4)
    ap.add_argument("--full-lr", type=float, default=3e-4)
    ap.add_argument("--all-data", action="store_true", help="time partial FT on all data")
    ap.add_argument("--name", default="finetune_compare")
    ap.add_argument(
        "--summary-only", action="store_true", help="only rewrite the JSON from finished runs"
    )
    return ap


def main() -> None:
    args = parser().parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    if args.all_data:
        all_data(args)
        return
    train_bg, held_out = backgrounds()
    done_dir = args.work / "results"
    done_dir.mkdir(exist_ok=True)
    methods = args.methods.split(",")
    full_seeds = {int(s) for s in args.full_seeds.split(",") if s}
    for seed in () if args.summary_only else (int(s) for s in args.seeds.split(",")):
        contexts: dict[float, dict[str, Any]] = {}
        cross = None
        for method in methods:
            if method.startswith("full") and seed not in full_seeds:
                continue
            val = val_fraction(method)
            for v in {VAL, val} - contexts.keys():  # VAL too: the test split to compare with
                contexts[v] = seed_context(args.work, seed, v, train_bg)
            tests = {tuple(r.sha256 for r in c["test"]) for c in contexts.values()}
            assert len(tests) == 1, "the test split must not depend on the val share"
            ctx = contexts[val]
            rows, labels, test = ctx["rows"], ctx["labels"], ctx["test"]
            tag = f"{method}-{seed}"
            if (done_dir / f"{tag}.json").is_file():
                old = json.loads((done_dir / f"{tag}.json").read_text()).get("params")
                if method in ("lr", "head") or same_params(old, finetune_params(method, args)):
                    continue
                logger.info("%s: kept result has other settings; running again", tag)
            logger.info("=== %s (seed %d)", method, seed)
            if cross is None:
                cross = cross_source_set(test, held_out)
            out = args.work / "bundles" / f"{tag}.onnx"
            out.parent.mkdir(parents=True, exist_ok=True)
            if method in ("lr", "head"):
                if "emb" not in ctx:
                    ctx["emb"], ctx["backbone"], ctx["embed_s"] = frozen_embeddings(args.work, rows)
                r = run_frozen(method, ctx, out)
            else:
                r = run_finetune(method, ctx, out, args)
            r["metrics"] = evaluate(Path(r.pop("bundle")), test, labels, cross)
            r.update(
                method=method,
                seed=seed,
                split={s: int(sum(x.split == s for x in rows)) for s in ("train", "val", "test")},
                cross_source_n=len(cross[0]),
            )
            (done_dir / f"{tag}.json").write_text(json.dumps(r, indent=1, default=str))
            logger.info("%s: %s", tag, json.dumps(r["metrics"]["test"]))
    results = {p.stem: json.loads(p.read_text()) for p in sorted(done_dir.glob("*.json"))}
    write_result(
        args.name,
        {
            "dataset": "trashnet (6 labels), val 0.15 (methods with val<share>: that share) / "
            "test 0.15 (the same images for every method), stratified, near-dups grouped",
            "cross_source": "test images whose object mask is plausible, composited on 150 "
            "extra/ photos disjoint from the 150 used as training backgrounds",
            "runs_by_command": {
                "lr, head, partial (seeds 0-2; defaults: from block 4, 8 epochs, 2 views, "
                "composite 0.5, flip TTA in the bundle)": "python bench/finetune_compare.py "
                "--seeds 0,1,2 --methods lr,head,partial",
                "partial_prev (the previous default: from block 5, 10 epochs, 3 views, no "
                "TTA), full (seed 0)": "python bench/finetune_compare.py --seeds 0,1,2 "
                "--methods lr,head,partial,full --full-seeds 0 --from-block 5 --epochs 10 "
                "--views 3 --no-tta (at commit e4dee91; partial renamed partial_prev)",
                "ablations": "python bench/finetune_compare.py --seeds 0,1,2 "
                "--methods partial_noaug,partial_procbg (old defaults; stopped after seed 1)",
                "seed-0 experiments": "python bench/finetune_compare.py --seeds 0 --methods "
                "partial:b4:e12,partial:b4:e12:tta,partial:b4:e12:c0.2,partial:b4:e12:c0.2:tta,"
                "partial:b4:e8:v2:tta, partial:b3:e12:tta, partial:b4:e12:r288:tta, "
                "partial:b4:e12:v5:tta, partial:b4:e12:tta:last:val0.05 (one method per run; "
                "see OVERRIDES)",
                "ensemble of two members, last epoch, val 0.05": "python "
                "bench/finetune_compare.py --seeds 0,1,2 --methods "
                "partial:b4:e12:tta:n2:last:val0.05 (seed 0's first member is the "
                "partial:b4:e12:tta:last:val0.05 run, resumed from its checkpoint)",
                "ensembles of three and four": "python bench/finetune_compare.py --seeds 0,1,2 "
                "--methods partial:b4:e12:tta:n3:last:val0.05 (then n4): members 0-1 (0-2) are "
                "the previous ensemble's, resumed from their checkpoints, so the run's wall "
                "time counts the new member only; epoch_seconds_mean counts every member",
                "ensemble of five (seed 0; stopped there: no gain)": "python "
                "bench/finetune_compare.py --seeds 0,1,2 --methods "
                "partial:b4:e12:tta:n5:last:val0.05 (members 0-3 from n4)",
                "EfficientNet-Lite2 at 260 px": "python bench/finetune_compare.py --seeds 0,1,2 "
                "--methods partial:b4:e12:tta:lite2:last:val0.05 (seed 0 first, then 1,2)",
                "two Lite2 members (seed 0; stopped there: no gain)": "python "
                "bench/finetune_compare.py --seeds 0,1,2 --methods "
                "partial:b4:e12:tta:lite2:n2:last:val0.05 (member 0 from the Lite2 run)",
            },
            "summary": summarise(results),
            "runs": results,
        },
    )


if __name__ == "__main__":
    main()
