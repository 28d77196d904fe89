"""Fine-tuning on a CPU: the activation store, a tiny real partial/full run exported as a
SPEC bundle, and resuming from the checkpoint after a crash (tiny images, real Lite0)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs the [train] extra (torch)")

from PIL import Image, ImageDraw  # noqa: E402

from whichbin.config import TrainingConfig  # noqa: E402
from whichbin.training.activations import ActivationStore
from whichbin.training.finetune import Recipe, finetune  # noqa: E402

LABELS = ["glass", "metal", "trash"]
COLOURS = {"glass": (40, 160, 60), "metal": (60, 60, 200), "trash": (200, 60, 40)}


@dataclass
class Row:
    path: Path
    label: str
    sha256: str


def make_rows(root: Path, per_label: int = 4) -> list[Row]:
    """Small photos of coloured objects on a light board, on disk like a dataset."""
    rows = []
    rng = np.random.default_rng(0)
    for lab in LABELS:
        for i in range(per_label):
            img = Image.new("RGB", (64, 80), (220, 222, 226))
            x, y = (int(v) for v in rng.integers(5, 25, 2))
            ImageDraw.Draw(img).ellipse((x, y, x + 30, y + 40), fill=COLOURS[lab])
            p = root / lab / f"{i}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            img.save(p, quality=95)
            rows.append(Row(p, lab, hashlib.sha256(p.read_bytes()).hexdigest()))
    return rows


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Row], list[Row], Path]:
    root = tmp_path_factory.mktemp("ft")
    rows = make_rows(root / "images")
    train = [r for i, r in enumerate(rows) if i % 4 != 0]
    val = [r for i, r in enumerate(rows) if i % 4 == 0]
    return train, val, root / "work"


PARAMS = TrainingConfig(
    mode="partial",
    image_size=64,
    finetune_from_block=6,
    finetune_epochs=2,
    augment_views=1,
    seed=3,
    threads=2,
)
RECIPE = Recipe(batch_size=4)


def tuned(**update: object) -> TrainingConfig:
    """PARAMS with some ``training`` keys changed."""
    return PARAMS.model_copy(update=update)


@pytest.fixture(scope="module")
def straight(data: tuple[list[Row], list[Row], Path], tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """One uninterrupted partial run (the reference for the other tests)."""
    train, val, work = data
    out = tmp_path_factory.mktemp("out")
    return finetune(PARAMS, train, val, LABELS, work, out, progress=False, recipe=RECIPE)


def test_activation_store_cuts_a_torn_write(tmp_path: Path) -> None:
    store = ActivationStore(tmp_path / "s")
    a = np.arange(2 * 3 * 2 * 2, dtype=np.float16).reshape(2, 3, 2, 2)
    store.append([("aa", 0), ("bb", 1)], a)
    with open(tmp_path / "s" / "acts.f16", "ab") as f:  # a crash mid-append
        f.write(b"\0" * 10)
    with open(tmp_path / "s" / "index.tsv", "a") as f:
        f.write("cc\t")
    again = ActivationStore(tmp_path / "s")
    assert len(again) == 2 and ("bb", 1) in again and ("cc", 0) not in again
    again.append([("cc", 0)], a[:1] + 1)
    read = ActivationStore(tmp_path / "s").reader()
    np.testing.assert_array_equal(read(np.array([1, 2])), np.stack([a[1], a[0] + 1]))


def test_partial_bundle_has_logits_embedding_and_meta(
    data: tuple[list[Row], list[Row], Path], straight
) -> None:  # noqa: ANN001
    from whichbin.inference import OnnxClassifier, read_meta

    _, val, _ = data
    meta = read_meta(straight.bundle)
    assert meta.labels == LABELS and meta.preprocess.size == 64
    assert meta.bins == {"glass": "recycling", "metal": "recycling", "trash": "landfill"}
    assert meta.metrics["finetune"]["mode"] == "partial"
    clf = OnnxClassifier(straight.bundle)
    images = [Image.open(r.path).convert("RGB") for r in val]
    logits, emb = clf.run(images, with_embedding=True)
    assert logits.shape == (3, 3) and emb is not None and emb.shape == (3, 1280)
    np.testing.assert_allclose(logits, straight.val_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(emb, straight.val_embeddings, rtol=1e-4, atol=1e-4)
    (w, b) = straight.layers[0]  # the head as layers: what export.replace_head needs
    np.testing.assert_allclose(emb @ w.T + b, logits, rtol=1e-3, atol=1e-3)
    assert len(straight.history["val_acc"]) == 2 and straight.best_epoch in (1, 2)


def test_resume_after_a_crash_matches_an_uninterrupted_run(
    data: tuple[list[Row], list[Row], Path],
    straight,  # noqa: ANN001
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    train, val, work = data

    def crash(epoch: int, history: dict) -> None:
        if epoch == 1:
            raise RuntimeError("power cut")

    caplog.set_level(logging.INFO, logger="whichbin.training.finetune")
    with pytest.raises(RuntimeError, match="power cut"):
        finetune(
            PARAMS, train, val, LABELS, work, tmp_path, progress=False, on_epoch=crash,
            recipe=RECIPE,
        )  # fmt: skip
    # The same images again: every activation came from the cache.
    assert not any("caching" in r.message for r in caplog.records)
    assert (tmp_path / "checkpoint.pt").is_file()
    assert not (tmp_path / "model.onnx").exists()
    resumed = finetune(PARAMS, train, val, LABELS, work, tmp_path, progress=False, recipe=RECIPE)
    assert resumed.resumed_after == 1 and straight.resumed_after == 0
    assert len(resumed.history["train_loss"]) == 2
    np.testing.assert_allclose(resumed.history["train_loss"], straight.history["train_loss"])
    np.testing.assert_allclose(resumed.val_logits, straight.val_logits, rtol=1e-4, atol=1e-4)


def test_tta_flip_bundle_averages_the_image_and_its_mirror(
    data: tuple[list[Row], list[Row], Path],
    straight,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    """Only the export changes: the finished checkpoint is re-exported, not retrained."""
    import shutil

    from whichbin.inference import OnnxClassifier, read_meta

    train, val, work = data
    shutil.copy(straight.bundle.parent / "checkpoint.pt", tmp_path / "checkpoint.pt")
    res = finetune(
        tuned(finetune_tta_flip=True), train, val, LABELS, work, tmp_path, progress=False,
        recipe=RECIPE,
    )  # fmt: skip
    assert res.resumed_after == PARAMS.finetune_epochs
    assert read_meta(res.bundle).metrics["finetune"]["tta_flip"] is True
    plain = OnnxClassifier(straight.bundle)
    images = [Image.open(r.path).convert("RGB") for r in val]
    mirrored = [im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for im in images]
    _, e1 = plain.run(images, with_embedding=True)
    _, e2 = plain.run(mirrored, with_embedding=True)
    assert e1 is not None and e2 is not None
    np.testing.assert_allclose(res.val_embeddings, (e1 + e2) / 2, rtol=1e-3, atol=1e-3)
    (w, b) = res.layers[0]
    np.testing.assert_allclose(res.val_logits, res.val_embeddings @ w.T + b, atol=1e-3)


def test_mixup_draw_keeps_each_example_dominant() -> None:
    from whichbin.training.finetune import mixup_draw

    rng = np.random.default_rng(0)
    for _ in range(20):
        lam, perm = mixup_draw(rng, 0.4, 6)
        assert 0.5 <= lam <= 1 and sorted(perm) == list(range(6))


def test_mixup_run_trains_and_leaves_torch_threads_as_they_were(
    data: tuple[list[Row], list[Row], Path], tmp_path: Path
) -> None:
    import torch

    train, val, work = data
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = finetune(
            tuned(finetune_mixup=0.4, finetune_epochs=1, threads=2),
            train, val, LABELS, work, tmp_path, progress=False, recipe=RECIPE,
        )  # fmt: skip
        assert torch.get_num_threads() == 1  # the caller's setting, not training.threads
    finally:
        torch.set_num_threads(before)
    assert np.isfinite(res.history["train_loss"]).all() and res.val_logits.shape == (3, 3)


def test_full_mode_trains_every_layer(
    data: tuple[list[Row], list[Row], Path], tmp_path: Path
) -> None:
    from whichbin.inference import read_meta

    train, val, work = data
    p = TrainingConfig(mode="full", image_size=64, finetune_epochs=1, augment_composite=1.0)
    res = finetune(p, train, val, LABELS, work, tmp_path / "full", progress=False, recipe=RECIPE)
    assert read_meta(res.bundle).metrics["finetune"]["mode"] == "full"
    assert res.val_logits.shape == (3, 3) and np.isfinite(res.val_logits).all()


@pytest.mark.parametrize(
    ("backbone", "side"), [("efficientnet_lite0", 224), ("efficientnet_lite2", 260)]
)
def test_input_size_defaults_to_the_backbones_own(backbone: str, side: int) -> None:
    from whichbin.training.backbones import get_backbone_spec, preprocess_for

    t = TrainingConfig(backbone=backbone, mode="partial")
    # The head pipeline and fine-tuning read the same key: one size for both.
    assert preprocess_for(get_backbone_spec(backbone), t.image_size, "squash").size == side
    t = TrainingConfig(backbone=backbone, image_size=96)
    assert preprocess_for(get_backbone_spec(backbone), t.image_size, "squash").size == 96


def test_fine_tuning_reads_the_training_section() -> None:
    """No copy of the config with drifted defaults: threads 0 means all cores, one meaning;
    head mode is refused in one line."""
    import os

    from whichbin.errors import ConfigError
    from whichbin.training.finetune import finetune_settings
    from whichbin.training.finetune.params import torch_threads

    assert torch_threads(TrainingConfig()) == os.cpu_count()
    assert torch_threads(TrainingConfig(threads=3)) == 3
    t = TrainingConfig(mode="full", finetune_epochs=2, augment_views=1, finetune_lr=3e-4)
    s = finetune_settings(t, Recipe())
    assert (s["mode"], s["finetune_epochs"], s["augment_views"], s["finetune_lr"]) == (
        "full", 2, 1, 3e-4
    )  # fmt: skip
    assert s["batch_size"] == Recipe().batch_size and "epochs" not in s  # the head's keys
    with pytest.raises(ConfigError, match="training.mode: head"):
        finetune(TrainingConfig(), [], [], LABELS, Path("w"), Path("o"))


def test_ensemble_bundle_averages_its_members(
    data: tuple[list[Row], list[Row], Path], tmp_path: Path
) -> None:
    from whichbin.training.finetune import bundle_outputs

    train, val, work = data
    res = finetune(
        tuned(finetune_members=2), train, val, LABELS, work, tmp_path, progress=False,
        recipe=RECIPE,
    )  # fmt: skip
    paths = [r.path for r in val]
    members = [bundle_outputs(tmp_path / f"member-{i}" / "model.onnx", paths) for i in (0, 1)]
    assert not np.allclose(members[0][0], members[1][0], atol=1e-3)  # two different models
    np.testing.assert_allclose(res.val_logits, (members[0][0] + members[1][0]) / 2, atol=1e-4)
    np.testing.assert_allclose(
        res.val_embeddings, np.concatenate([members[0][1], members[1][1]], 1), atol=1e-4
    )
    (w, b), = res.layers  # fmt: skip
    np.testing.assert_allclose(res.val_embeddings @ w.T + b, res.val_logits, atol=1e-4)


def test_select_last_exports_the_final_weights(
    data: tuple[list[Row], list[Row], Path], tmp_path: Path
) -> None:
    import torch

    train, val, work = data
    res = finetune(
        tuned(finetune_select="last", finetune_epochs=3), train, val, LABELS, work, tmp_path,
        progress=False, recipe=RECIPE,
    )  # fmt: skip
    assert res.best_epoch == 3
    final = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"]
    np.testing.assert_array_equal(res.layers[0][0], final["fc.weight"].numpy())


def test_pick_backgrounds_skips_board_photos(tmp_path: Path) -> None:
    from whichbin.training.finetune import pick_backgrounds

    rows = make_rows(tmp_path / "board", per_label=1)
    rng = np.random.default_rng(0)
    for i in range(3):
        p = tmp_path / "clutter" / f"{i}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(p)
        rows.append(Row(p, "trash", str(i)))
    got = pick_backgrounds(rows, n=10)
    assert got == sorted(tmp_path / "clutter" / f"{i}.jpg" for i in range(3))
