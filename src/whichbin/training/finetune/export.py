"""The bundle of a fine-tuning run: the frozen prefix and the trained part(s) as one ONNX
graph with ``logits`` and ``embedding``, and its outputs on the validation images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from whichbin.config import TrainingConfig
from whichbin.inference import BundleMeta, PreprocessSpec, now_iso, write_meta
from whichbin.training.embeddings import load_rgb
from whichbin.training.finetune.nets import BundleNet


def export_bundle(
    model: Any,
    net: Any,
    k: int,
    pre: PreprocessSpec,
    labels: list[str],
    meta: BundleMeta | None,
    cfg: TrainingConfig,
    best: dict[str, Any],
    out: Path,
) -> Path:
    """Write ``out`` (the SPEC bundle); ``best``: the exported epoch and its accuracy."""
    from whichbin.training.export import export_module_onnx

    if meta is None:
        from whichbin.rules import load_rules

        meta = BundleMeta(labels=labels, bins=load_rules().restricted_to(labels))
    meta = meta.model_copy(
        update={
            "labels": labels,
            "preprocess": pre,
            "created": meta.created or now_iso(),
            "backbone": f"{cfg.backbone}+{cfg.mode}-ft",
            "metrics": {
                **meta.metrics,
                "finetune": {
                    "mode": cfg.mode,
                    "from_block": k,
                    "epochs": cfg.finetune_epochs,
                    "best_epoch": best["epoch"],
                    "val_acc": best["acc"],
                    "tta_flip": cfg.finetune_tta_flip,
                    "members": cfg.finetune_members,
                },
            },
        }
    )
    net = BundleNet(model, k, net, cfg.finetune_tta_flip).eval()
    export_module_onnx(net, pre.size, out)
    write_meta(out, meta)
    return out


def bundle_outputs(
    bundle: Path, paths: Sequence[Path], batch: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """(logits, embeddings) of a bundle on image files, with ONNX Runtime."""
    from whichbin.inference import OnnxClassifier

    clf = OnnxClassifier(bundle)
    logits, embs = [], []
    for i in range(0, len(paths), batch):
        lg, emb = clf.run([load_rgb(p) for p in paths[i : i + batch]], with_embedding=True)
        assert emb is not None  # export_module_onnx always writes the embedding output
        logits.append(lg)
        embs.append(emb)
    return np.concatenate(logits), np.concatenate(embs)
