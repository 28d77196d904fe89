"""The cached local pipeline, run for real on generated photos with the torch-free
head-only path (the colour bundle's backbone): caching, incremental re-runs, the gate
against the approved model, registration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import COLORS, solid_image
from whichbin.config import GateConfig, PipelineConfig, TrainingConfig
from whichbin.errors import ConfigError
from whichbin.pipelines.local import run_pipeline
from whichbin.registry import open_registry

LABEL_OF_BIN = {"landfill": "trash", "compost": "organic", "recycling": "plastic"}


def make_photos(root: Path, n: int, start: int = 0) -> Path:
    """n photos per label, each a noisy variation of its bin's colour."""
    rng = np.random.default_rng(start)
    for b in COLORS:
        label = LABEL_OF_BIN[b]
        (root / label).mkdir(parents=True, exist_ok=True)
        for j in range(start, start + n):
            rgb = tuple(int(np.clip(c + rng.integers(-40, 40), 0, 255)) for c in COLORS[b])
            solid_image(root / label / f"{b}_{j}.jpg", rgb, size=(64 + j % 7, 48))
    return root


def config(tmp_path: Path, color_bundle: Path, **gate) -> PipelineConfig:
    return PipelineConfig(
        work_dir=str(tmp_path / "work"),
        training=TrainingConfig(base_model=str(color_bundle), int8=False, epochs=60),
        gate=GateConfig(min_bin_accuracy=0.5, min_bin_recall={}, **gate),
    )


def photos_config_registry(tmp_path: Path, color_bundle: Path) -> tuple[Path, PipelineConfig, str]:
    """14 photos per bin, the test pipeline config on ``color_bundle``, a registry path."""
    return (
        make_photos(tmp_path / "photos", 14),
        config(tmp_path, color_bundle),
        str(tmp_path / "reg"),
    )


def test_rerun_is_cached_and_new_photos_recompute_only_what_changed(
    tmp_path: Path, color_bundle: Path
) -> None:
    photos, cfg, reg = photos_config_registry(tmp_path, color_bundle)
    first = run_pipeline(cfg, [photos], reg, progress=False)
    assert first.version == "trash-classifier/1"
    assert first.gate == "passed" and first.status == "PendingManualApproval"
    assert first.metrics["bin_accuracy"] > 0.9
    assert not any(t["cached"] for t in first.timings.values())
    assert Path(first.report).is_file()
    assert (Path(first.report).parent / "confusion.png").stat().st_size > 1000

    again = run_pipeline(cfg, [photos], reg, progress=False)
    assert again.version == first.version  # the same bundle is not registered twice
    for step in ("backbone", "train", "export", "evaluate"):
        assert again.timings[step]["cached"], step
    assert [v.id for v in open_registry(reg).list()] == ["trash-classifier/1"]

    make_photos(photos, 2, start=100)
    more = run_pipeline(cfg, [photos], reg, progress=False)
    assert more.lineage["manifest_hash"] != first.lineage["manifest_hash"]
    assert more.timings["backbone"]["cached"]
    assert not more.timings["train"]["cached"]
    from whichbin.training.embeddings import EmbeddingCache

    cache = EmbeddingCache(tmp_path / "work" / "cache" / "embeddings.sqlite")
    (count,) = cache.db.execute("SELECT COUNT(*) FROM emb").fetchone()
    cache.close()
    assert count == sum(more.lineage["images"].values())  # each image embedded once


def test_gate_refuses_candidate_worse_than_approved_registering_or_not(
    tmp_path: Path, color_bundle: Path
) -> None:
    reg = str(tmp_path / "reg")
    photos = make_photos(tmp_path / "photos", 14)
    good = run_pipeline(config(tmp_path, color_bundle), [photos], reg, progress=False)
    open_registry(reg).approve(good.version, by="alice")
    cfg = config(tmp_path, color_bundle)
    cfg.gate.min_bin_accuracy = 0.0
    # Same photos, same test split, but a head that has barely trained: a worse candidate.
    cfg.training.epochs, cfg.training.lr, cfg.training.seed = 1, 1e-6, 3
    # `pipeline run --no-register` first: the verdict registering would give, nothing stored.
    dry = run_pipeline(cfg, [photos], reg, register=False, progress=False)
    assert dry.gate == "failed" and dry.lineage["compared_with"] == "trash-classifier/1"
    assert any("worse than the approved model trash-classifier/1" in r for r in dry.reasons)
    assert dry.version is None and dry.status == "unregistered"
    assert [v.id for v in open_registry(reg).list()] == ["trash-classifier/1"]
    # With no registry there, none is created and the gate checks its thresholds only.
    nowhere = tmp_path / "nowhere"
    alone = run_pipeline(cfg, [photos], str(nowhere), register=False, progress=False)
    assert alone.gate == "passed" and alone.lineage["compared_with"] is None
    assert not nowhere.exists()

    bad = run_pipeline(cfg, [photos], reg, progress=False)
    assert bad.metrics["bin_accuracy"] < good.metrics["bin_accuracy"] - 0.1
    assert bad.gate == "failed"
    assert any("worse than the approved model trash-classifier/1" in r for r in bad.reasons)
    assert bad.lineage["compared_with"] == "trash-classifier/1"
    v = open_registry(reg).get(bad.version)
    assert v.gate == "failed" and v.reasons == bad.reasons


def test_label_without_a_bin_is_named(tmp_path: Path, color_bundle: Path) -> None:
    photos = make_photos(tmp_path / "photos", 8)
    (photos / "plastic").rename(photos / "mystery")
    with pytest.raises(ConfigError, match="no bin for label 'mystery'"):
        run_pipeline(config(tmp_path, color_bundle), [photos], str(tmp_path / "reg"))


@pytest.mark.slow
def test_partial_finetuning_mode_runs_and_registers(tmp_path: Path) -> None:
    """training.mode: partial goes through fine-tuning, ONNX evaluation and the registry."""
    pytest.importorskip("torch", reason="fine-tuning needs the [train] extra (torch)")
    photos = make_photos(tmp_path / "photos", 12)
    cfg = PipelineConfig(
        work_dir=str(tmp_path / "work"),
        training=TrainingConfig(
            mode="partial", finetune_epochs=1, augment_views=0, image_size=64, int8=True
        ),
        gate=GateConfig(min_bin_accuracy=0.0, min_bin_recall={}),
    )
    res = run_pipeline(cfg, [photos], str(tmp_path / "reg"), progress=False)
    assert res.version == "trash-classifier/1"
    assert "finetune_partial" in res.timings and "train" not in res.timings
    assert "int8" not in res.metrics  # INT8 applies to the head-only path
    from whichbin.inference import OnnxClassifier

    clf = OnnxClassifier(res.bundle)
    assert clf.meta.preprocess.size == 64 and clf.meta.backbone.endswith(":partial")
    again = run_pipeline(cfg, [photos], str(tmp_path / "reg"), progress=False)
    assert again.timings["finetune_partial"]["cached"] and again.version == res.version


def test_int8_bundle_shares_the_fp32_head_and_is_cached(tmp_path: Path, color_bundle: Path) -> None:
    import onnx

    from whichbin.inference import read_meta

    photos = make_photos(tmp_path / "photos", 14)
    cfg = config(tmp_path, color_bundle)
    cfg.training.int8, cfg.training.int8_max_loss = True, 1.0
    res = run_pipeline(cfg, [photos], None, register=False, progress=False)
    q = res.metrics["int8"]
    assert q["shipped"] and res.bundle.parent.parent.name == "export_int8"
    assert read_meta(res.bundle).metrics["quantization"] == "int8-static-per-channel-minmax"
    assert {"fp32_accuracy", "int8_accuracy", "fp32_bin_accuracy", "int8_bin_accuracy"} <= set(q)
    fp32 = next((tmp_path / "work" / "steps" / "export").glob("*/model.onnx"))
    heads = [
        {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer if "head" in i.name}
        for m in (onnx.load(str(res.bundle)), onnx.load(str(fp32)))
    ]
    assert heads[0] and all(np.array_equal(heads[0][k], heads[1][k]) for k in heads[1])

    again = run_pipeline(cfg, [photos], None, register=False, progress=False)
    assert again.timings["backbone_int8"]["cached"] and again.bundle == res.bundle


def test_head_retrain_on_an_int8_bundle_does_not_quantize_twice(tmp_path: Path) -> None:
    from tests.training.test_quantize import CONV_META, _conv_backbone
    from whichbin.training.export import build_bundle
    from whichbin.training.quantize import is_quantized, quantize_bundle

    head = [(np.zeros((3, 8), np.float32), np.zeros(3, np.float32))]
    fp32 = build_bundle(_conv_backbone(tmp_path / "bb.onnx"), head, CONV_META, tmp_path / "f.onnx")
    photos = make_photos(tmp_path / "photos", 14)
    calib = sorted(photos.rglob("*.jpg"))[::6]
    int8 = quantize_bundle(fp32, calib, tmp_path / "int8.onnx")
    assert is_quantized(int8) and not is_quantized(fp32)
    cfg = config(tmp_path, int8)
    cfg.training.int8 = True
    res = run_pipeline(cfg, [photos], None, register=False, progress=False)
    assert "backbone_int8" not in res.timings and "int8" not in res.metrics
    assert is_quantized(res.bundle) and res.metrics["bin_accuracy"] > 0.9
