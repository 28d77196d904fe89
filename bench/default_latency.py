"""The bundled default model against an earlier one: per-frame latency (batch 1, p50/p90)
at 1 and 2 threads, with PyTorch eager on the plain backbone as the reference, all in one
run, plus each file's size.

Usage:
  git show d8f8eac:src/whichbin/resources/default_model.onnx > /tmp/whichbin-default-v3.onnx
  python bench/default_latency.py --baseline /tmp/whichbin-default-v3.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402
from int8_latency import latency_ort, latency_torch  # noqa: E402


def main() -> None:
    from whichbin.inference import default_model_path, read_meta

    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    bundles = {"baseline": args.baseline, "current": default_model_path()}
    size = read_meta(bundles["current"]).preprocess.size
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    out: dict = {"bundles": {}, "latency": {}}
    for name, path in bundles.items():
        meta = read_meta(path)
        out["bundles"][name] = {
            "version": meta.version,
            "bytes": path.stat().st_size,
            "labels": len(meta.labels),
        }
    for threads in (1, 2):
        row = {"torch_eager": latency_torch("efficientnet_lite0", x, threads, args.runs)}
        for name, path in bundles.items():
            row[name] = latency_ort(path, x, threads, args.runs)
        row["current_vs_baseline"] = row["current"]["p50_ms"] / row["baseline"]["p50_ms"]
        out["latency"][f"{threads}t"] = row
        print(threads, {k: v for k, v in row.items()}, file=sys.stderr, flush=True)
    write_result("default_latency", out)


if __name__ == "__main__":
    main()
