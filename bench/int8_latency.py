"""INT8 vs FP32: accuracy on the same test split, and latency per frame at 1 and 2 threads,
against PyTorch eager (the reference), measured in one run.

Usage: python bench/int8_latency.py --work /tmp/whichbin-bench-pipeline/work
(a pipeline work dir: its newest exported bundle and its dataset's test split are used)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402


def latency_ort(bundle: Path, x: np.ndarray, threads: int, runs: int) -> dict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    s = ort.InferenceSession(str(bundle), opts, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    for _ in range(5):
        s.run(["logits"], {name: x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(["logits"], {name: x})
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90))}


def latency_torch(backbone: str, x: np.ndarray, threads: int, runs: int) -> dict:
    import torch

    from whichbin.training.backbones import create_backbone

    torch.set_num_threads(threads)
    model, _, _ = create_backbone(backbone)
    t = torch.from_numpy(x)
    times = []
    with torch.no_grad():
        for _ in range(5):
            model(t)
        for _ in range(runs):
            t0 = time.perf_counter()
            model(t)
            times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90))}


def main() -> None:
    from whichbin.evaluation.evaluate import evaluate_bundle
    from whichbin.processing import load_manifest
    from whichbin.rules import load_rules
    from whichbin.training.bundle import read_meta
    from whichbin.training.quantize import quantize_bundle

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--calibration", type=int, default=128)
    args = ap.parse_args()
    bundles = sorted(
        (args.work / "steps" / "export").glob("*/model.onnx"), key=lambda p: p.stat().st_mtime
    )
    fp32 = bundles[-1]
    rows = load_manifest(args.work / "dataset")
    train = [r for r in rows if r.split == "train"]
    test = [r for r in rows if r.split == "test"]
    meta = read_meta(fp32)
    test = [r for r in test if r.label in meta.labels]
    rules = load_rules()
    out: dict = {"fp32_bundle": str(fp32), "test_images": len(test)}
    results = {}
    for method in ("minmax", "entropy", "percentile"):
        q = args.work / f"int8-{method}.onnx"
        t0 = time.perf_counter()
        calib = [
            r.path for r in train[:: max(1, len(train) // args.calibration)][: args.calibration]
        ]
        quantize_bundle(fp32, calib, q, method=method)
        secs = time.perf_counter() - t0
        m = evaluate_bundle(q, [r.path for r in test], [r.label for r in test], rules)
        results[method] = {
            "accuracy": m["accuracy"],
            "bin_accuracy": m["bin_accuracy"],
            "quantize_seconds": round(secs, 1),
            "bytes": q.stat().st_size,
        }
    m = evaluate_bundle(fp32, [r.path for r in test], [r.label for r in test], rules)
    out["fp32"] = {
        "accuracy": m["accuracy"],
        "bin_accuracy": m["bin_accuracy"],
        "bytes": fp32.stat().st_size,
    }
    out["int8"] = results
    best = max(results, key=lambda k: results[k]["accuracy"])
    out["best_int8"] = best
    out["int8_loss_points"] = round(100 * (out["fp32"]["accuracy"] - results[best]["accuracy"]), 2)
    x = (
        np.random.default_rng(0)
        .uniform(-1, 1, (1, 3, meta.preprocess.size, meta.preprocess.size))
        .astype(np.float32)
    )
    lat = {}
    for threads in (1, 2):
        lat[f"fp32_ort_{threads}t"] = latency_ort(fp32, x, threads, args.runs)
        lat[f"int8_ort_{threads}t"] = latency_ort(
            args.work / f"int8-{best}.onnx", x, threads, args.runs
        )
        lat[f"torch_eager_{threads}t"] = latency_torch(
            meta.backbone or "efficientnet_lite0", x, threads, args.runs
        )
    for threads in (1, 2):
        ref = lat[f"torch_eager_{threads}t"]["p50_ms"]
        for k in ("fp32_ort", "int8_ort"):
            lat[f"{k}_{threads}t"]["speedup_vs_torch"] = round(
                ref / lat[f"{k}_{threads}t"]["p50_ms"], 2
            )
    out["latency_batch1"] = lat
    write_result("int8_latency", out)


if __name__ == "__main__":
    main()
