"""Pick the backbone by measurement: EfficientNet-Lite0/1/2 as frozen feature extractors on
TrashNet (6 labels, 15 % test, stratified, near-duplicates grouped), 3 split seeds: test
accuracy of the numpy head and of the sklearn logistic-regression reference on the same
features, embedding throughput, single-frame latency and bundle size.

Usage: python bench/backbones.py [--work DIR] [--backbones efficientnet_lite0,efficientnet_lite1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED, write_result  # noqa: E402
from int8_latency import latency_ort  # noqa: E402


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from whichbin.config import DataConfig, PipelineConfig, TrainingConfig
    from whichbin.pipelines.cache import StepCache
    from whichbin.pipelines.train import backbone_step, embed_rows
    from whichbin.processing import prepare_dataset
    from whichbin.training.backbones import get_backbone_spec
    from whichbin.training.heads import forward, train_head

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/whichbin-bench-backbones"))
    ap.add_argument(
        "--backbones", default="efficientnet_lite0,efficientnet_lite1,efficientnet_lite2"
    )
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {}
    for name in args.backbones.split(","):
        size = get_backbone_spec(name).default_size
        cfg = PipelineConfig(
            work_dir=str(args.work), training=TrainingConfig(backbone=name, image_size=size)
        )
        steps = StepCache(args.work / "steps")
        backbone, pre, wid = backbone_step(cfg, steps)
        per_seed = []
        embed_seconds = None
        for seed in seeds:
            prepared = prepare_dataset(
                [SHARED / "trashnet"], args.work / "dataset", DataConfig(seed=seed)
            )
            rows = prepared.rows
            t0 = time.perf_counter()
            emb, _ = embed_rows(cfg, rows, backbone, pre, wid, progress=False)
            if embed_seconds is None:
                embed_seconds = time.perf_counter() - t0
            labels = prepared.labels
            y = np.array([labels.index(r.label) for r in rows])
            split = np.array([r.split for r in rows])
            tr, va, te = split == "train", split == "val", split == "test"
            t0 = time.perf_counter()
            res = train_head(emb[tr], y[tr], len(labels), emb[va], y[va], epochs=300, seed=seed)
            head_s = time.perf_counter() - t0
            acc = float(np.mean(forward(res.layers, emb[te]).argmax(1) == y[te]))
            t0 = time.perf_counter()
            trva = tr | va
            sc = StandardScaler().fit(emb[trva])
            lr = LogisticRegression(max_iter=1000, C=0.5).fit(sc.transform(emb[trva]), y[trva])
            ref_s = time.perf_counter() - t0
            ref = float(np.mean(lr.predict(sc.transform(emb[te])) == y[te]))
            per_seed.append(
                {
                    "seed": seed,
                    "head_accuracy": acc,
                    "logreg_accuracy": ref,
                    "head_seconds": round(head_s, 1),
                    "logreg_seconds": round(ref_s, 1),
                    "test_images": int(te.sum()),
                }
            )
            print(name, per_seed[-1], file=sys.stderr)
        x = np.zeros((1, 3, size, size), np.float32)
        accs = [p["head_accuracy"] for p in per_seed]
        refs = [p["logreg_accuracy"] for p in per_seed]
        results[name] = {
            "input_size": size,
            "head_accuracy_mean": float(np.mean(accs)),
            "head_accuracy_std": float(np.std(accs)),
            "logreg_accuracy_mean": float(np.mean(refs)),
            "logreg_accuracy_std": float(np.std(refs)),
            "first_embedding_pass_seconds": round(embed_seconds or 0.0, 1),
            "latency_1thread": latency_ort(backbone, x, 1, 50),
            "backbone_onnx_bytes": backbone.stat().st_size,
            "seeds": per_seed,
        }
    write_result("backbones", {"dataset": "trashnet (6 labels)", "results": results})


if __name__ == "__main__":
    main()
