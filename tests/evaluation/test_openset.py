"""The open-set familiarity score: in the ONNX graph exactly as in numpy, rebuilt with the
head, and low for inputs unlike anything in training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from whichbin.evaluation.openset import familiarity, familiarity_threshold, prototypes
from whichbin.rules import predict_from_probs


def clusters(rng: np.random.Generator, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    centres = np.eye(3, 8, dtype=np.float32) * 5
    y = np.repeat(np.arange(3), n)
    return centres[y] + rng.normal(0, 0.3, (3 * n, 8)).astype(np.float32), y


def test_familiarity_ranks_far_points_below_training_like_ones() -> None:
    rng = np.random.default_rng(0)
    x, y = clusters(rng)
    protos = prototypes(x, y, per_label=4)
    assert protos.shape[1] == 8 and 3 <= len(protos) <= 12
    near, _ = clusters(np.random.default_rng(1), 5)
    far = rng.normal(0, 1, (15, 8)).astype(np.float32)
    far[:, :3] = 0  # nothing along any trained direction
    f_near, f_far = familiarity(near, protos), familiarity(far, protos)
    assert f_far.max() < f_near.min()
    thr = familiarity_threshold(familiarity(x, protos), 0.05)
    assert f_far.max() < thr < f_near.max()


def test_unfamiliar_is_unsure_however_confident() -> None:
    l2b = {"a": "compost", "b": "landfill"}
    sure = predict_from_probs(
        [0.99, 0.01], ["a", "b"], l2b, 0.5, familiarity=0.9, min_familiarity=0.5
    )
    strange = predict_from_probs(
        [0.99, 0.01], ["a", "b"], l2b, 0.5, familiarity=0.2, min_familiarity=0.5
    )
    assert sure.decision == "decided" and strange.decision == "unsure"
    assert strange.bin == "compost" and strange.familiarity == 0.2


def test_bundle_familiarity_matches_numpy_and_follows_a_new_head(
    tmp_path: Path, color_bundle: Path
) -> None:
    import onnx

    from whichbin.inference import OnnxClassifier, read_meta
    from whichbin.training.export import replace_head

    meta = read_meta(color_bundle)
    meta = meta.model_copy(update={"rules": {**meta.rules, "familiarity": 0.3}})
    layers = [(np.eye(3, dtype=np.float32) * 6, np.zeros(3, np.float32))]
    protos = np.array([[1.0, 0.0, 0.0]], np.float32)  # only bright red was ever seen
    out = replace_head(color_bundle, layers, meta, tmp_path / "fam.onnx", protos, k=1)
    clf = OnnxClassifier(out)
    imgs = [np.full((32, 32, 3), c, np.uint8) for c in ((250, 0, 0), (120, 0, 0))]
    _, emb = OnnxClassifier(color_bundle).run(imgs, with_embedding=True)
    probs, fam = clf.scores(imgs)
    assert fam is not None and emb is not None
    np.testing.assert_allclose(fam, familiarity(emb, protos, k=1), atol=1e-5)
    bright, dark = clf.predict(imgs)
    assert bright.label == dark.label == "trash" and min(probs.max(1)) > 0.9
    assert bright.decision == "decided"
    assert dark.decision == "unsure"  # confident, but unlike anything seen
    # A head-only retrain replaces the prototypes instead of adding a second score.
    other = np.array([[0.0, 0.0, -1.0]], np.float32)
    again = replace_head(out, layers, meta, tmp_path / "fam2.onnx", other, k=1)
    _, fam2 = OnnxClassifier(again).scores(imgs)
    assert fam2 is not None
    np.testing.assert_allclose(fam2, familiarity(emb, other, k=1), atol=1e-5)
    names = [o.name for o in onnx.load(str(again)).graph.output]
    assert sorted(names) == ["embedding", "familiarity", "logits"]


@pytest.mark.shared_data
def test_bundled_model_finds_noise_and_flat_colour_unfamiliar(shared_data: Path) -> None:
    from whichbin.inference import OnnxClassifier, default_model_path

    clf = OnnxClassifier(default_model_path())
    assert clf.has_familiarity and clf.min_familiarity is not None
    photos = [Image.open(p).convert("RGB") for p in sorted(shared_data.glob("*/*/*.jpg"))[::400]]
    rng = np.random.default_rng(0)
    odd = [
        Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)),
        Image.fromarray(np.full((224, 224, 3), (200, 40, 160), np.uint8)),
        Image.fromarray(np.full((224, 224, 3), 128, np.uint8)),
    ]
    _, fam_photos = clf.scores(photos)
    _, fam_odd = clf.scores(odd)
    assert fam_photos is not None and fam_odd is not None
    assert fam_odd.max() < np.median(fam_photos)
    assert all(p.decision == "unsure" for p in clf.predict(odd))


@pytest.mark.shared_data
def test_the_edge_votes_with_the_bundles_familiarity(shared_data: Path) -> None:
    from datetime import UTC, datetime

    from whichbin.edge.decide import vote
    from whichbin.edge.runner import ActiveModel, frame_prediction
    from whichbin.inference import OnnxClassifier, default_model_path

    clf = OnnxClassifier(default_model_path())
    model = ActiveModel.from_classifier(clf)
    grey = Image.fromarray(np.full((224, 224, 3), 128, np.uint8))
    photo = Image.open(shared_data / "trashnet" / "glass" / "glass1.jpg").convert("RGB")
    odd, usual = (frame_prediction(model, p) for p in clf.predict([grey, photo]))
    assert odd.min_familiarity == clf.min_familiarity and odd.familiarity is not None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert vote([odd] * 3, now, now).decision == "unsure"
    assert vote([usual] * 3, now, now).decision == "decided"
