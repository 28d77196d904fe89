"""Per-frame cost of each TrashNet recipe: ONNX Runtime latency (batch 1, p50/p90) of the
seed-0 bundle each ``finetune_compare`` method exported, at 1 and 2 threads, against
PyTorch eager running the plain backbone (the reference) in the same run.

Ensembles run the frozen stages once and the trained stages once per member; flip TTA
doubles the batch. This shows what an accuracy gain costs on the device.

Usage: python bench/bundle_latency.py [--work /tmp/whichbin-bench-ft] [--methods a,b]
  (default: every method of bench/results/finetune_compare.json measured on 3 seeds)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, write_result  # noqa: E402
from int8_latency import latency_ort, latency_torch  # noqa: E402


def bundle_of(work: Path, method: str, seed: int = 0) -> Path | None:
    """Where ``finetune_compare`` left a method's bundle for one seed (None: not kept)."""
    for p in (work / "bundles" / f"{method}-{seed}" / "model.onnx",
              work / "bundles" / f"{method}-{seed}.onnx"):  # fmt: skip
        if p.is_file():
            return p
    return None


def main() -> None:
    from whichbin.inference import read_meta

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/whichbin-bench-ft"))
    ap.add_argument("--methods", default="", help="default: the 3-seed methods")
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    summary = json.loads((RESULTS / "finetune_compare.json").read_text())["summary"]
    methods = args.methods.split(",") if args.methods else [
        m for m, s in summary.items() if len(s["seeds"]) >= 3
    ]  # fmt: skip
    out: dict = {"methods": {}, "reference": {}, "skipped": {}}
    size = 224
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    for threads in (1, 2):
        out["reference"][f"torch_eager_{threads}t"] = latency_torch(
            "efficientnet_lite0", x, threads, args.runs
        )
    for method in methods:
        bundle = bundle_of(args.work, method)
        if bundle is None:
            if args.methods:
                raise SystemExit(f"{args.work}/bundles: no {method} bundle; run finetune_compare")
            out["skipped"][method] = f"no seed-0 bundle under {args.work}/bundles"
            print(method, "skipped: no bundle", flush=True)
            continue
        meta = read_meta(bundle)
        side = meta.preprocess.size
        xm = np.random.default_rng(0).uniform(-1, 1, (1, 3, side, side)).astype(np.float32)
        row = {
            "bundle": str(bundle),
            "input_size": side,
            "bytes": bundle.stat().st_size,
            "members": meta.metrics.get("finetune", {}).get("members", 1),
            "tta_flip": meta.metrics.get("finetune", {}).get("tta_flip", False),
            "accuracy_mean": summary.get(method, {}).get("test.accuracy", {}).get("mean"),
        }
        for threads in (1, 2):
            lat = latency_ort(bundle, xm, threads, args.runs)
            ref = out["reference"][f"torch_eager_{threads}t"]["p50_ms"]
            row[f"ort_{threads}t"] = {**lat, "x_torch_eager": round(lat["p50_ms"] / ref, 2)}
        out["methods"][method] = row
        print(method, row["ort_1t"]["p50_ms"], row["ort_2t"]["p50_ms"], flush=True)
    write_result("bundle_latency", out)


if __name__ == "__main__":
    main()
