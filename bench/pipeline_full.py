"""Full pipeline on all of ../shared/data (trashnet, extra, real/takeaway, real/household)
from a cold cache, then, WITH A MODEL APPROVED in the registry, a re-run with nothing
changed and a re-run with 30 new photos: wall time per step, test metrics (per source too),
gate, bundle size. Two phases share one work directory and registry:

1. ``pipeline``: the pipeline's own backbone. Cold run, approve it, re-run, +30 photos.
2. ``base_model_default``: ``--base-model default`` (head-only on the bundled model's
   backbone), the first phase's model approved. Its cold run embeds every image once with
   the bundled backbone (a new backbone); then a re-run and +30 (other) photos.

Usage: python bench/pipeline_full.py [--work /tmp/wb-bench] [--config pipeline.yaml]
  [--cold-only]   # one cold run on all the photos (for slow recipes, e.g. configs/accurate.yaml)
  [--base-model BUNDLE]   # only phase 2, on this bundle's backbone (e.g. a fine-tuned one)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED, write_result  # noqa: E402

SOURCES = ("trashnet", "extra", "real/takeaway", "real/household")
NO_CHANGE_TARGET_S, ADD_30_TARGET_S = 3.0, 15.0


def run(work: Path, data: list[str], flags: list[str]) -> tuple[dict, float]:
    """One ``whichbin pipeline run --json`` in ``work`` (so sources are named data/...)."""
    cmd = ["whichbin", "pipeline", "run", "--json", "--work-dir", "work", "--registry", "registry"]
    for d in data:
        cmd += ["--data", d]
    cmd += flags
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    wall = time.perf_counter() - t0
    if out.returncode not in (0, 3):  # 3: the gate failed, the JSON is still there
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit(f"pipeline failed: {' '.join(cmd)}")
    doc = json.loads(out.stdout)
    doc["approved_images_run"] = _approved_images_run(work, doc)
    return doc, wall


def _approved_images_run(work: Path, doc: dict) -> int | None:
    """How many test images went through the approved model in this run (None: no step)."""
    t = doc["timings"].get("evaluate_approved")
    if t is None or t["cached"]:
        return None if t is None else 0
    files = (work / "work" / "steps" / "evaluate_approved").glob("*/result.json")
    latest = max(files, key=lambda p: p.stat().st_mtime)
    return int(json.loads(latest.read_text()).get("computed", -1))


def link_data(work: Path, held_every: dict[str, int], per_label: int = 0) -> dict[str, Path]:
    """Symlink every photo (or ``per_label`` per folder) into work/data; hold back 30 per
    phase (``i % 200 == offset``) in work/new-<phase>. Returns the held folders."""
    base = work / "data"
    for name in SOURCES:
        folders = sorted({f.parent for f in (SHARED / name).rglob("*.jpg")})
        for f in (f for d in folders for f in sorted(d.glob("*.jpg"))[: per_label or None]):
            dst = base / f.relative_to(SHARED)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(f)
    held = {}
    photos = sorted(base.rglob("*.jpg"))
    for phase, offset in held_every.items():
        folder = held[phase] = work / f"new-{phase}"
        moved = 0
        for i, f in enumerate(photos):
            if i % 200 == offset and moved < 30:
                dst = folder / f.relative_to(base)
                dst.parent.mkdir(parents=True, exist_ok=True)
                f.rename(dst)
                moved += 1
    return held


def add_back(work: Path, held: Path) -> None:
    for f in sorted(held.rglob("*.jpg")):
        f.rename(work / "data" / f.relative_to(held))


def phase(work: Path, data: list[str], flags: list[str], held: Path, approve: bool) -> dict:
    """Cold run (approved afterwards when ``approve``), re-run, +30 photos."""
    from whichbin.registry import open_registry

    cold, cold_wall = run(work, data, flags)
    if approve:
        open_registry(str(work / "registry")).approve(cold["version"], by="bench")
    warm, warm_wall = run(work, data, flags)
    add_back(work, held)
    added, added_wall = run(work, data, flags)
    return {
        "cold": {"wall_seconds": round(cold_wall, 1), **cold},
        "warm_rerun": _brief(warm, warm_wall),
        "add_30_photos": {**_brief(added, added_wall), "metrics": added["metrics"]},
        "bundle_bytes": (work / cold["bundle"]).stat().st_size,
        "targets": {
            "no_change_rerun_s": NO_CHANGE_TARGET_S,
            "no_change_rerun_met": warm_wall <= NO_CHANGE_TARGET_S,
            "add_30_photos_s": ADD_30_TARGET_S,
            "add_30_photos_met": added_wall <= ADD_30_TARGET_S,
        },
    }


def _brief(doc: dict, wall: float) -> dict[str, Any]:
    return {
        "wall_seconds": round(wall, 1),
        "timings": doc["timings"],
        "gate": doc["gate"],
        "version": doc["version"],
        "compared_with": doc["lineage"].get("compared_with"),
        "approved_images_run": doc["approved_images_run"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/whichbin-bench-pipeline"))
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--base-model", default=None, help="only phase 2, on this bundle")
    ap.add_argument("--name", default="pipeline_full")
    ap.add_argument("--cold-only", action="store_true", help="no warm or +30 photos re-run")
    ap.add_argument("--per-label", type=int, default=0, help="a quick check: N photos a label")
    args = ap.parse_args()
    work = args.work.absolute()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    phases = {"base_model": 107} if args.base_model else {"pipeline": 7, "base_model": 107}
    held = link_data(work, {} if args.cold_only else phases, args.per_label)
    data = [f"data/{s}" for s in SOURCES]
    flags = ["--config", str(args.config.absolute())] if args.config else []
    if args.cold_only:
        extra = ["--base-model", args.base_model] if args.base_model else []
        cold, cold_wall = run(work, data, flags + extra)
        cold = {"wall_seconds": round(cold_wall, 1), **cold}
        write_result(
            args.name, {"cold": cold, "bundle_bytes": (work / cold["bundle"]).stat().st_size}
        )
        return
    result: dict[str, Any] = {"sources": data, "per_label": args.per_label or "all"}
    if args.base_model:  # one phase, reported at the top level as before
        own = phase(work, data, [*flags, "--base-model", args.base_model], held["base_model"], True)
        result.update(own)
    else:
        own = phase(work, data, flags, held["pipeline"], approve=True)
        base = phase(work, data, [*flags, "--base-model", "default"], held["base_model"], False)
        result.update(own)  # the top level is the pipeline's own backbone (README figures)
        result["base_model_default"] = base
    write_result(args.name, result)


if __name__ == "__main__":
    main()
