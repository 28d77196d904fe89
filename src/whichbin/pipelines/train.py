"""Training steps of the local pipeline: backbone export, cached embeddings, head, bundle."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from whichbin.config import PipelineConfig
from whichbin.inference import BundleMeta, PreprocessSpec, now_iso
from whichbin.pipelines.cache import StepCache, StepOutcome, hash_key
from whichbin.pipelines.head import (
    bin_only_rows,
    calibrate_on_val,
    head_targets,
    load_head,
    load_site_memory,
    previous_head,
    save_site_memory,
    site_memory_for,
    train_head_step,
    with_composites,
    with_site_views,
)
from whichbin.rules import RulePack
from whichbin.training.extra import require_train_extra
from whichbin.training.site_memory import SiteMemory

logger = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """A trained, calibrated bundle, as fine-tuning hands it to evaluation (every test
    image then goes through the bundle file)."""

    bundle: Path
    temperature: float
    threshold: float
    dir: Path  # the training step's directory: reliability diagram, training curves
    val: dict[str, Any]

    @classmethod
    def from_step(cls, step: StepOutcome, bundle: Path, **parts: Any) -> Self:
        """From a training step's outcome (its temperature, threshold and val metrics)."""
        r = step.result
        return cls(bundle, r["temperature"], r["threshold"], step.dir, r["val"], **parts)


@dataclass
class HeadModel(TrainedModel):
    """A head on frozen embeddings: evaluation and the INT8 variant reuse its parts."""

    layers: list[tuple[np.ndarray, np.ndarray]]
    protos: np.ndarray | None  # familiarity prototypes, if the bundle has them
    site: SiteMemory | None
    embeddings: np.ndarray  # every manifest row's, in manifest order
    backbone: Path
    preprocess: PreprocessSpec
    meta: BundleMeta
    train_key: str


# Settings that do not change the head: leaving them out of its cache key means toggling
# INT8 or the thread count does not retrain.
NOT_HEAD_PARAMS = {
    "int8",
    "int8_max_loss",
    "int8_method",
    "int8_calibration_images",
    "threads",
    "batch_size",
}


def backbone_step(cfg: PipelineConfig, steps: StepCache) -> tuple[Path, PreprocessSpec, str]:
    """Export (once) the pretrained backbone as ONNX; returns (path, preprocess, weights id)."""
    from whichbin.training.backbones import get_backbone_spec, preprocess_for, weights_id

    t = cfg.training
    if t.base_model:
        return _base_model_backbone(t.base_model, steps)
    require_train_extra(t)
    spec = get_backbone_spec(t.backbone)
    pre = preprocess_for(spec, t.image_size, t.resize)
    wid = weights_id(t.backbone, t.weights)
    cache_dir = Path(cfg.work_dir) / "cache"

    def export(d: Path) -> dict[str, Any]:
        from whichbin.training.export import export_backbone_onnx

        export_backbone_onnx(t.backbone, t.weights, pre.size, d / "backbone.onnx", cache_dir)
        return {"backbone": t.backbone, "size": pre.size}

    out = steps.run("backbone", {"weights": wid, "size": pre.size, "v": 1}, export)
    return out.dir / "backbone.onnx", pre, wid


def _base_model_backbone(base: str, steps: StepCache) -> tuple[Path, PreprocessSpec, str]:
    """The backbone of an existing bundle (no torch needed): the head-only retrain path."""
    from whichbin.errors import ConfigError
    from whichbin.inference import default_model_path, read_meta, sha256_file
    from whichbin.pipelines.cache import graph_content_id
    from whichbin.training.export import strip_to_backbone

    path = default_model_path() if base == "default" else Path(base)
    if not path.is_file():
        raise ConfigError(f"training.base_model: file not found: {path}")
    sha = sha256_file(path)
    meta = read_meta(path)

    def strip(d: Path) -> dict[str, Any]:
        strip_to_backbone(path, d / "backbone.onnx")
        return {"base_model": str(path), "graph": graph_content_id(d / "backbone.onnx")}

    out = steps.run("backbone", {"bundle": sha, "v": 2}, strip)
    # Embeddings are keyed by what the backbone computes, not by the bundle file: bundles
    # that differ only in their head or metadata (a head-only retrain, a registry's
    # version stamp) share one backbone, so their embeddings are computed once.
    return out.dir / "backbone.onnx", meta.preprocess, f"backbone:{out.result['graph']}"


def embed_rows(
    cfg: PipelineConfig, rows: list, backbone: Path, pre: Any, wid: str, progress: bool
) -> tuple[np.ndarray, str]:
    """Embeddings for manifest rows through the per-image cache."""
    from whichbin.training.embeddings import (
        EmbeddingCache,
        OnnxEncoder,
        compute_embeddings,
        embedding_key,
    )

    key = embedding_key(wid, pre)
    cache = EmbeddingCache(Path(cfg.work_dir) / "cache" / "embeddings.sqlite")
    try:
        shas = [r.sha256 for r in rows]
        if len(cache.get_many(key, shas)) == len(set(shas)):
            emb = compute_embeddings([r.path for r in rows], shas, None, cache, key)  # type: ignore[arg-type]
        else:
            enc = OnnxEncoder(backbone, pre, cfg.training.threads)
            emb = compute_embeddings(
                [r.path for r in rows], shas, enc, cache, key, cfg.training.batch_size, progress
            )
    finally:
        cache.close()
    return emb, key


def train_and_export(
    cfg: PipelineConfig,
    prepared: Any,
    labels: list[str],
    rules: RulePack,
    steps: StepCache,
    progress: bool = True,
) -> TrainedModel:
    """Backbone → embeddings → head (+ temperature, threshold) → bundle. Cached per step."""
    import time

    t = cfg.training
    labels = rules.model_labels(labels)
    if t.mode != "head":
        return finetune_and_export(cfg, prepared, labels, rules, steps, progress)
    backbone, pre, wid = backbone_step(cfg, steps)
    t0 = time.perf_counter()
    rows = prepared.rows
    emb, ekey = embed_rows(cfg, rows, backbone, pre, wid, progress)
    steps.record("embed", time.perf_counter() - t0, {"images": len(rows)})
    y, targets, split = head_targets(rows, labels, rules)
    train_parts = {
        "manifest": prepared.manifest_hash,
        "emb": ekey,
        "labels": labels,
        "training": t.model_dump(exclude=NOT_HEAD_PARAMS),
        "v": 2,
    }

    family = hash_key({k: v for k, v in train_parts.items() if k != "manifest"})
    init = previous_head(steps, family) if t.warm_start else None

    def train(d: Path) -> dict[str, Any]:
        from whichbin.training.augment import VIEWS

        arrays = with_site_views(cfg, rows, (emb, y, targets, split), backbone, pre, wid)
        arrays = with_composites(cfg, rows, arrays, backbone, pre, wid)
        res = train_head_step(d, *arrays[:2], arrays[3], labels, t, rules, arrays[2], init)
        sel = np.where(bin_only_rows(targets) & (split == "train"))[0]
        owner = np.arange(len(arrays[0]))  # each row its own photo, views their photo's
        owner[len(rows) : len(rows) + len(sel) * VIEWS] = np.repeat(sel, VIEWS)
        mem = site_memory_for(arrays, owner, load_head(d), res["temperature"], t)
        if mem is not None:
            save_site_memory(d, mem)
        site = mem.as_dict() if mem is not None else None
        return {**res, "family": family, "warm_start": init is not None, "site_memory": site}

    trained = steps.run("train", train_parts, train)
    layers = load_head(trained.dir)
    site = load_site_memory(trained.dir)
    protos = np.load(trained.dir / "protos.npy") if t.familiarity_prototypes else None
    meta = BundleMeta(
        labels=labels,
        bins=rules.restricted_to(labels),
        preprocess=pre,
        temperature=trained.result["temperature"],
        version=f"candidate-{trained.key}",
        metrics={
            "val": trained.result["val"],
            **({"site_memory": site.as_dict()} if site is not None else {}),
        },
        created=now_iso(),
        rules={
            "name": rules.name,
            "version": rules.version,
            "threshold": trained.result["threshold"],
            **({"familiarity": trained.result["familiarity"]} if protos is not None else {}),
        },
        backbone=t.backbone if not t.base_model else f"base:{t.base_model}",
    )

    def export(d: Path) -> dict[str, Any]:
        from whichbin.training.export import build_bundle

        build_bundle(backbone, layers, meta, d / "model.onnx", protos, site=site)
        return {"created": meta.created}

    exported = steps.run(
        "export", {"train": trained.key, "rules": rules.model_dump(), "v": 3}, export
    )
    return HeadModel.from_step(
        trained,
        exported.dir / "model.onnx",
        layers=layers,
        protos=protos,
        site=site,
        embeddings=emb,
        backbone=backbone,
        preprocess=pre,
        meta=meta,
        train_key=trained.key,
    )


def int8_bundle(
    cfg: PipelineConfig, prepared: Any, trained: HeadModel, steps: StepCache
) -> tuple[Path, np.ndarray]:
    """The INT8 bundle: the backbone quantized once (per-channel, static, bias-corrected)
    plus the same head, and the INT8 embeddings of the test split (cached per image like the
    FP32 ones). The FP32 head serves both: the quantized backbone's embeddings stay within
    cosine 0.997 of FP32, and a head trained on INT8 features measured no better."""
    from whichbin.inference import sha256_file
    from whichbin.training.export import build_bundle
    from whichbin.training.quantize import int8_marker, quantize_onnx

    t = cfg.training
    backbone = trained.backbone
    # Calibration: a fixed-size, content-ordered sample of training images. The quantized
    # backbone is keyed by the backbone alone, so adding photos does not re-quantize it.
    train = sorted((r for r in prepared.rows if r.split == "train"), key=lambda r: r.sha256)
    calib = train[:: max(1, len(train) // t.int8_calibration_images)][: t.int8_calibration_images]

    def quantize(d: Path) -> dict[str, Any]:
        paths = [r.path for r in calib]
        quantize_onnx(backbone, paths, trained.preprocess, d / "backbone.onnx", t.int8_method)
        return {"calibration": [r.sha256 for r in calib], "method": t.int8_method}

    key = {"backbone": sha256_file(backbone), "method": t.int8_method, "v": 6}
    q = steps.run("backbone_int8", key, quantize)
    qbackbone = q.dir / "backbone.onnx"
    test = [r for r in prepared.rows if r.split == "test"]
    emb, _ = embed_rows(cfg, test, qbackbone, trained.preprocess, f"int8:{q.key}", False)

    meta = trained.meta
    meta = meta.model_copy(update={"metrics": {**meta.metrics, **int8_marker(t.int8_method)}})

    def export(d: Path) -> dict[str, Any]:
        build_bundle(
            qbackbone, trained.layers, meta, d / "model.onnx", trained.protos, site=trained.site
        )
        return {}

    out = steps.run("export_int8", {"train": trained.train_key, "int8": q.key, "v": 3}, export)
    return out.dir / "model.onnx", emb


def finetune_and_export(
    cfg: PipelineConfig,
    prepared: Any,
    labels: list[str],
    rules: RulePack,
    steps: StepCache,
    progress: bool = True,
) -> TrainedModel:
    """Partial or full fine-tuning (training/finetune/) → calibrated bundle. Resumable:
    the step's directory keeps the per-epoch checkpoint until the step completes."""
    from whichbin.evaluation.report import plot_curves
    from whichbin.inference import write_meta
    from whichbin.training.finetune import Recipe, finetune, finetune_settings, pick_backgrounds

    t = cfg.training
    rows = [r for r in prepared.rows if not rules.is_bin_only(r.label)]
    if len(rows) < len(prepared.rows):
        logger.warning(
            "fine-tuning learns from labelled photos only: %d bin-only photos are left to "
            "head-only retrains (training.mode: head)",
            len(prepared.rows) - len(rows),
        )
    train = [r for r in rows if r.split == "train"]
    val = [r for r in rows if r.split == "val"]
    key = {
        "manifest": prepared.manifest_hash,
        "labels": labels,
        "params": finetune_settings(t, Recipe()),
        "rules": rules.model_dump(),
        "v": 1,
    }
    # A stable directory per key, outside the step's temporary one, so a crash resumes.
    resume_dir = Path(cfg.work_dir) / "finetune" / hash_key(key)

    def run(d: Path) -> dict[str, Any]:
        import shutil

        meta = BundleMeta(
            labels=labels,
            bins=rules.restricted_to(labels),
            rules={"name": rules.name, "version": rules.version},
        )
        res = finetune(
            t,
            train,
            val,
            labels,
            Path(cfg.work_dir) / "cache",
            resume_dir,
            meta=meta,
            backgrounds=pick_backgrounds(train),
            progress=progress,
        )
        index = {lab: i for i, lab in enumerate(labels)}
        y_val = np.array([index[r.label] for r in val])
        c = calibrate_on_val(res.val_logits, y_val, labels, rules, t)
        temp, thr, prec, cov, m = c.temperature, c.threshold, c.precision, c.coverage, c.m
        shutil.copy(res.bundle, d / "model.onnx")
        final = meta.model_copy(
            update={
                "preprocess": res.preprocess,
                "temperature": temp,
                "created": now_iso(),
                "backbone": f"{t.backbone}:{t.mode}",
                "version": f"candidate-{t.mode}",
                "rules": {**meta.rules, "threshold": thr},
                "metrics": {"val": {"accuracy": m["accuracy"], "bin_accuracy": m["bin_accuracy"]}},
            }
        )
        write_meta(d / "model.onnx", final)
        plot_curves(res.history, d / "curves.png")
        return {
            "temperature": temp,
            "threshold": thr,
            "seconds": res.seconds,
            "val": {
                "accuracy": m["accuracy"],
                "bin_accuracy": m["bin_accuracy"],
                "decided_accuracy": prec,
                "coverage": cov,
                "best_epoch": res.best_epoch,
            },
        }

    out = steps.run(f"finetune_{t.mode}", key, run)
    return TrainedModel.from_step(out, out.dir / "model.onnx")
