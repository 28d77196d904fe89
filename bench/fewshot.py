"""Few-shot adaptation curve: a model trained without one source, then given K of that
source's photos per bin (K = 0, 5, 10, 20) and retrained head-only (numpy, as on a Pi).
Bin accuracy on the held-out source's test photos, the time each adaptation took, and a
plain reference (sklearn logistic regression) on exactly the same data.

Usage: python bench/fewshot.py --work /tmp/whichbin-bench-pipeline/work [--holdout trashnet]
(a pipeline work dir whose embedding cache already holds every image)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402


def bin_scores(probs: np.ndarray, labels: list[str], true_bins: list[str], l2b: dict) -> tuple:
    """(bin accuracy, balanced bin accuracy = mean per-bin recall). The held-out source's
    bins are skewed (TrashNet is 95 % recycling) while K photos per bin are balanced, so the
    balanced figure is the one that shows adaptation."""
    from whichbin.evaluation.metrics import bin_metrics

    m = bin_metrics(probs, true_bins, labels, l2b)
    return m["bin_accuracy"], float(np.mean(list(m["bin_recall"].values())))


def main() -> None:
    from whichbin.config import PipelineConfig
    from whichbin.inference import softmax
    from whichbin.pipelines.cache import StepCache
    from whichbin.pipelines.train import backbone_step, embed_rows
    from whichbin.processing import load_manifest
    from whichbin.rules import load_rules
    from whichbin.training.heads import forward, train_head

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--holdout", default="trashnet")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ks", default="0,5,10,20")
    args = ap.parse_args()

    rows = load_manifest(args.work / "dataset")
    source_of = {}
    for line in (args.work / "dataset" / "samples.jsonl").read_text().splitlines():
        rec = json.loads(line)
        source_of[rec["sha256"]] = rec["source"]
    held = [r for r in rows if f"/{args.holdout}/" in source_of.get(r.sha256, "")]
    rest = [r for r in rows if r not in held]
    cfg = PipelineConfig(work_dir=str(args.work), training={"base_model": None})  # Lite0 from torch
    backbone, pre, wid = backbone_step(cfg, StepCache(args.work / "steps"))
    allrows = rest + held
    emb, _ = embed_rows(cfg, allrows, backbone, pre, wid, progress=False)
    e_rest, e_held = emb[: len(rest)], emb[len(rest) :]
    rules = load_rules()
    l2b_all = rules.label_to_bin()
    base_train = [i for i, r in enumerate(rest) if r.split in ("train", "val")]
    held_test = [i for i, r in enumerate(held) if r.split == "test"]
    held_pool = [i for i, r in enumerate(held) if r.split != "test"]
    true_bins = [l2b_all[held[i].label] for i in held_test]
    bins_present = sorted({l2b_all[held[i].label] for i in held_pool})
    curve = []
    for k in [int(v) for v in args.ks.split(",")]:
        accs, ref_accs, secs = [], [], []
        for rep in range(args.repeats if k else 1):
            rng = np.random.default_rng(rep)
            shots = []
            for b in bins_present:
                pool = [i for i in held_pool if l2b_all[held[i].label] == b]
                shots += list(rng.choice(pool, size=min(k, len(pool)), replace=False)) if k else []
            x = np.concatenate([e_rest[base_train], e_held[shots]]) if shots else e_rest[base_train]
            labs = [rest[i].label for i in base_train] + [held[i].label for i in shots]
            labels = sorted(set(labs))
            idx = {lab: j for j, lab in enumerate(labels)}
            y = np.array([idx[lab] for lab in labs])
            # Each new photo counts as much as the whole old class it joins would suggest.
            t0 = time.perf_counter()
            res = train_head(x, y, len(labels), epochs=150, lr=0.05, seed=rep, balance=False)
            secs.append(time.perf_counter() - t0)
            probs = softmax(forward(res.layers, e_held[held_test]), 1.0)
            l2b = {lab: l2b_all[lab] for lab in labels}
            accs.append(bin_scores(probs, labels, true_bins, l2b))
            from sklearn.linear_model import LogisticRegression
            from sklearn.preprocessing import StandardScaler

            sc = StandardScaler().fit(x)
            lr = LogisticRegression(max_iter=300, C=0.5).fit(sc.transform(x), y)
            ref_accs.append(
                bin_scores(
                    lr.predict_proba(sc.transform(e_held[held_test])), labels, true_bins, l2b
                )
            )
        curve.append(
            {
                "k_per_bin": k,
                "balanced_bin_accuracy_mean": float(np.mean([a[1] for a in accs])),
                "balanced_bin_accuracy_std": float(np.std([a[1] for a in accs])),
                "bin_accuracy_mean": float(np.mean([a[0] for a in accs])),
                "reference_logreg_balanced_bin_accuracy_mean": float(
                    np.mean([a[1] for a in ref_accs])
                ),
                "reference_logreg_bin_accuracy_mean": float(np.mean([a[0] for a in ref_accs])),
                "adapt_seconds_mean": float(np.mean(secs)),
                "repeats": len(accs),
            }
        )
        print(curve[-1], file=sys.stderr)
    write_result(
        "fewshot",
        {
            "holdout_source": args.holdout,
            "bins_in_holdout": bins_present,
            "train_images": len(base_train),
            "holdout_test_images": len(held_test),
            "curve": curve,
            "note": "head-only numpy retrain on cached Lite0 embeddings (what a Pi runs); "
            "the reference is sklearn LogisticRegression on the same features",
        },
    )


if __name__ == "__main__":
    main()
