"""Build the bundled default model: the default pipeline on all of ../shared/data, real/
included, its shipped (INT8) bundle stamped with a version and the data's attribution and
copied to src/whichbin/resources/default_model.onnx.

Usage: python bench/default_model.py [--work /tmp/whichbin-default/work] [--version N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED, write_result  # noqa: E402

SOURCES = [
    SHARED / "trashnet",
    SHARED / "extra",
    SHARED / "real" / "takeaway",
    SHARED / "real" / "household",
]
ATTRIBUTION = (
    "Trained on TrashNet (Gary Thung and Mindy Yang, MIT licence); public waste-classification "
    "collections (WasteImagesDataset and others; open-data and CC BY-SA among them); "
    "smartTrashBin images (CC BY-SA 4.0); YOLO Recycle Trash Detection, KMUTNB (CC BY 4.0). "
    "Backbone: EfficientNet-Lite0, ImageNet-pretrained."
)


def main() -> None:
    from whichbin.config import PipelineConfig
    from whichbin.inference import default_model_path, read_meta, sha256_file, write_meta
    from whichbin.pipelines.local import run_pipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/whichbin-default/work"))
    ap.add_argument("--version", type=int, default=4)
    args = ap.parse_args()
    # From scratch whatever the work dir holds, so the command reproduces the bundle.
    # No registry (none is created): the recorded gate is the thresholds', whatever
    # registry the current directory holds.
    cfg = PipelineConfig(
        work_dir=str(args.work),
        training={"warm_start": False, "base_model": None},
        registry={"uri": str(args.work / "no-registry")},
    )
    t0 = time.perf_counter()
    res = run_pipeline(cfg, SOURCES, None, register=False, progress=True)
    seconds = time.perf_counter() - t0
    out = default_model_path()
    tmp = out.with_suffix(".new.onnx")
    shutil.copy(res.bundle, tmp)
    meta = read_meta(tmp)
    meta = meta.model_copy(
        update={"version": f"whichbin-default/{args.version}", "attribution": ATTRIBUTION}
    )
    write_meta(tmp, meta)
    tmp.replace(out)
    write_result(
        "default_model",
        {
            "version": meta.version,
            "sha256": sha256_file(out),
            "bytes": out.stat().st_size,
            "sources": [str(s.relative_to(SHARED.parent)) for s in SOURCES],
            "pipeline_seconds": round(seconds, 1),
            "timings": res.timings,
            "test_metrics": res.metrics,
            "gate": res.gate,
            "rules": meta.rules,
        },
    )


if __name__ == "__main__":
    main()
