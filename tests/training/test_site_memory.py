"""The site memory: the next item like a corrected one gets the correction's bin, the same
in the ONNX graph as in numpy, and items unlike every correction keep the head's answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from whichbin.training.site_memory import build_site_memory, mixed_logits, mixed_probs


def test_memory_speaks_only_near_its_corrections() -> None:
    # Head: two labels ("a" compost, "b" landfill); it calls everything "a".
    probs = np.array([[0.9, 0.1]] * 3)
    rng = np.random.default_rng(0)
    near = np.array([1.0, 0.0, 0.0]) + rng.normal(0, 0.05, (4, 3))
    mem = build_site_memory(
        near,
        np.array([[0.9, 0.1]] * 4),
        np.array([[False, True]] * 4),
        np.arange(4),
        0.5,
        2,
        0.25,
    )
    assert np.allclose(mem.dists, [[0, 1]] * 4)  # landfill corrections: all on label "b"
    queries = np.array([[1.0, 0.02, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    mixed = mixed_probs(probs, mem, queries)
    assert mixed[0].argmax() == 1 and np.isclose(mixed[0, 1], 0.55)  # like a correction
    np.testing.assert_allclose(mixed[1:], probs[1:])  # unlike every correction: head alone
    assert 0.8 < mem.gate < 1.0


def test_bundle_logits_are_the_mixture(tmp_path: Path, color_bundle: Path) -> None:
    from whichbin.inference import OnnxClassifier, read_meta
    from whichbin.training.export import build_bundle, strip_to_backbone

    backbone = strip_to_backbone(color_bundle, tmp_path / "backbone.onnx")
    meta = read_meta(color_bundle).model_copy(update={"temperature": 1.7})
    layers = [(np.eye(3, dtype=np.float32) * 6, np.zeros(3, np.float32))]
    yellow = np.full((32, 32, 3), (220, 220, 30), np.uint8)
    blue = np.full((32, 32, 3), (30, 30, 220), np.uint8)
    _, emb = OnnxClassifier(color_bundle).run([yellow, yellow, blue], with_embedding=True)
    assert emb is not None
    labels = meta.labels  # trash, organic, plastic (landfill, compost, recycling)
    landfill = np.array([[lab == "trash" for lab in labels]] * 2)
    mem = build_site_memory(emb[:2], np.full((2, 3), 1 / 3), landfill, np.arange(2), 0.8, 1, 0.0)
    out = build_bundle(backbone, layers, meta, tmp_path / "site.onnx", site=mem)
    clf = OnnxClassifier(out)
    logits, _ = clf.run([yellow, blue])
    head = emb[[0, 2]] @ layers[0][0].T
    expected = mixed_logits(head, 1.7, mem, emb[[0, 2]])
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    got = clf.predict([yellow, blue])
    assert got[0].bin == "landfill"  # the head alone says compost/landfill tie
    assert got[1].bin == "recycling"
