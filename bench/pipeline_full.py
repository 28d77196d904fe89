"""Full pipeline on all of ../shared/data from a cold cache, then a warm re-run and a re-run
with 30 new photos: wall time per step, test metrics, gate, bundle size.

Usage: python bench/pipeline_full.py [--work /tmp/wb-bench] [--config pipeline.yaml]
  [--cold-only]   # one cold run on all the photos (for slow recipes, e.g. configs/accurate.yaml)
  [--base-model BUNDLE]   # head-only retrains on a bundle's backbone (e.g. a fine-tuned one)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED, write_result  # noqa: E402


def run(work: Path, data: list[Path], flags: list[str]) -> tuple[dict, float]:
    cmd = [
        "whichbin",
        "pipeline",
        "run",
        "--json",
        "--work-dir",
        str(work / "work"),
        "--registry",
        str(work / "registry"),
    ]
    for d in data:
        cmd += ["--data", str(d)]
    cmd += flags
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit(f"pipeline failed: {' '.join(cmd)}")
    return json.loads(out.stdout), wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/whichbin-bench-pipeline"))
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--base-model", default=None, help="head-only retrain on this bundle")
    ap.add_argument("--name", default="pipeline_full")
    ap.add_argument("--cold-only", action="store_true", help="no warm or +30 photos re-run")
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    # Hold 30 photos back, so the third run measures "add 30 new photos and re-run".
    base = args.work / "data"
    held = args.work / "new"
    for src in (SHARED / "trashnet", SHARED / "extra"):
        for f in sorted(src.rglob("*.jpg")):
            rel = f.relative_to(SHARED)
            dst = base / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(f)
    moved = 0
    for i, f in enumerate(sorted(base.rglob("*.jpg"))):
        if i % 200 == 7 and moved < 30 and not args.cold_only:
            dst = held / f.relative_to(base)
            dst.parent.mkdir(parents=True, exist_ok=True)
            f.rename(dst)
            moved += 1
    data = [base / "trashnet", base / "extra"]
    flags = ["--config", str(args.config)] if args.config else []
    flags += ["--base-model", args.base_model] if args.base_model else []
    cold, cold_wall = run(args.work, data, flags)
    bundle = Path(cold["bundle"])
    if args.cold_only:
        cold = {"wall_seconds": round(cold_wall, 1), **cold}
        write_result(args.name, {"cold": cold, "bundle_bytes": bundle.stat().st_size})
        return
    warm, warm_wall = run(args.work, data, flags)
    for f in sorted(held.rglob("*.jpg")):
        dst = base / f.relative_to(held)
        f.rename(dst)
    added, added_wall = run(args.work, data, flags)
    write_result(
        args.name,
        {
            "cold": {"wall_seconds": round(cold_wall, 1), **cold},
            "warm_rerun": {"wall_seconds": round(warm_wall, 1), "timings": warm["timings"]},
            "add_30_photos": {
                "wall_seconds": round(added_wall, 1),
                "timings": added["timings"],
                "metrics": added["metrics"],
                "gate": added["gate"],
            },
            "bundle_bytes": bundle.stat().st_size,
        },
    )


if __name__ == "__main__":
    main()
