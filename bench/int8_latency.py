"""INT8 vs FP32: accuracy on the same test split, and latency per frame at 1 and 2 threads,
against PyTorch eager (the reference), measured in one run.

Usage: python bench/int8_latency.py --work /tmp/whichbin-bench-pipeline/work \
         --data ../shared/data/trashnet --data ../shared/data/extra
(runs the pipeline's INT8 step with each calibration method on the same test split; the
work dir's caches make the FP32 part free)
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
        s.run(None, {name: x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(None, {name: x})
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


ABLATION = [
    ("ONNX Runtime defaults (8-bit weights, everything quantized)", {}),
    ("+ shape arithmetic kept float", {"shape_math_float": True}),
    ("+ 7-bit weights", {"shape_math_float": True, "weights_7bit": True}),
    (
        "+ stem convolutions kept float",
        {"shape_math_float": True, "weights_7bit": True, "stem_float": True},
    ),
    (
        "+ bias correction (shipped)",
        {
            "shape_math_float": True,
            "weights_7bit": True,
            "stem_float": True,
            "bias_correction": True,
        },
    ),
]


def ablation(work: Path, fp32_backbone: Path, n_test: int = 256) -> list[dict]:
    """Each step of the INT8 recipe on its own: cosine of the INT8 embedding to FP32 on test
    images, and latency at 1 thread."""
    import tempfile

    import onnxruntime as ort

    from whichbin.inference import PreprocessSpec, to_tensor
    from whichbin.processing import load_manifest
    from whichbin.training.embeddings import load_rgb
    from whichbin.training.quantize import Int8Recipe, quantize_onnx

    rows = load_manifest(work / "dataset")
    train = sorted((r for r in rows if r.split == "train"), key=lambda r: r.sha256)
    calib = [r.path for r in train[:: max(1, len(train) // 128)][:128]]
    test = [r.path for r in rows if r.split == "test"][:n_test]
    spec = PreprocessSpec()
    x = to_tensor([load_rgb(p) for p in test], spec)

    def embed(model: Path) -> np.ndarray:
        s = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        return np.concatenate(
            [s.run(["embedding"], {"input": x[i : i + 32]})[0] for i in range(0, len(x), 32)]
        )

    ref = embed(fp32_backbone)
    off = {f: False for f in Int8Recipe.__dataclass_fields__}
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, on in ABLATION:
            q = quantize_onnx(
                fp32_backbone, calib, spec, Path(tmp) / "q.onnx", recipe=Int8Recipe(**{**off, **on})
            )
            e = embed(q)
            cos = (e * ref).sum(1) / np.linalg.norm(e, axis=1) / np.linalg.norm(ref, axis=1)
            out.append(
                {
                    "step": name,
                    "cosine_mean": round(float(cos.mean()), 4),
                    "cosine_min": round(float(cos.min()), 4),
                    "latency_1t": latency_ort(q, x[:1], 1, 50),
                }
            )
            print(out[-1], file=sys.stderr)
    return out


def main() -> None:
    from whichbin.config import PipelineConfig, TrainingConfig
    from whichbin.inference import read_meta
    from whichbin.pipelines.local import run_pipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True, help="a pipeline work dir")
    ap.add_argument("--data", type=Path, action="append", required=True)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--methods", default="minmax,entropy,percentile")
    args = ap.parse_args()
    out: dict = {"int8": {}}
    bundles = {}
    for method in args.methods.split(","):
        cfg = PipelineConfig(
            work_dir=str(args.work),
            training=TrainingConfig(
                base_model=None, int8=True, int8_method=method, int8_max_loss=1.0
            ),
        )
        t0 = time.perf_counter()
        res = run_pipeline(cfg, args.data, register=False, progress=False)
        q = res.metrics["int8"]
        out["fp32"] = {"accuracy": q["fp32_accuracy"], "bytes": q["fp32_bytes"]}
        out["int8"][method] = {
            "accuracy": q["int8_accuracy"],
            "loss_points": round(100 * q["loss"], 2),
            "bytes": q["int8_bytes"],
            "pipeline_seconds": round(time.perf_counter() - t0, 1),
            "timings": res.timings,
        }
        bundles[method] = res.bundle
        out["test_images"] = res.metrics["n"]
    best = max(out["int8"], key=lambda k: out["int8"][k]["accuracy"])
    out["best_method"] = best
    fp32 = sorted(
        (args.work / "steps" / "export").glob("*/model.onnx"), key=lambda p: p.stat().st_mtime
    )[-1]
    meta = read_meta(fp32)
    size = meta.preprocess.size
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    lat = {}
    for threads in (1, 2):
        lat[f"fp32_ort_{threads}t"] = latency_ort(fp32, x, threads, args.runs)
        lat[f"int8_ort_{threads}t"] = latency_ort(bundles[best], x, threads, args.runs)
        lat[f"torch_eager_{threads}t"] = latency_torch(
            meta.backbone or "efficientnet_lite0", x, threads, args.runs
        )
        ref = lat[f"torch_eager_{threads}t"]["p50_ms"]
        for k in ("fp32_ort", "int8_ort"):
            lat[f"{k}_{threads}t"]["speedup_vs_torch"] = round(
                ref / lat[f"{k}_{threads}t"]["p50_ms"], 2
            )
    out["latency_batch1"] = lat
    backbone = sorted((args.work / "steps" / "backbone").glob("*/backbone.onnx"))[0]
    out["ablation"] = ablation(args.work, backbone)
    out["ablation_images"] = "256 test images; calibration: the pipeline's 128 training images"
    write_result("int8_latency", out)


if __name__ == "__main__":
    main()
