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

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED, write_result  # noqa: E402
from finetune_lib import (  # noqa: E402
    RULES,
    VAL,
    backgrounds,
    cross_source_set,
    evaluate,
    finetune_params,
    frozen_embeddings,
    meta_for,
    run_finetune,
    run_frozen,
    same_params,
    seed_context,
    settings_of,
    summarise,
    val_fraction,
)

from whichbin.config import DataConfig  # noqa: E402
from whichbin.processing.prepare import prepare_dataset  # noqa: E402
from whichbin.progress import silent_reporter  # noqa: E402

logger = logging.getLogger("finetune_compare")


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
