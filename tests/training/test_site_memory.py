"""The site memory: the next item like a corrected one gets the correction's bin, the same
in the ONNX graph as in numpy, and items unlike every correction keep the head's answer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from whichbin.training.site_memory import (
    build_site_memory,
    fit_domain,
    mixed_logits,
    mixed_probs,
)


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


def test_domain_gate_keeps_stock_like_items_near_a_correction_to_the_head() -> None:
    # Site photos share a background direction (axis 3) that stock photos lack; the item
    # itself is on axis 0 in both. A stock-like query on axis 0 is as near the corrections
    # as a site query, but only the site query gets the memory's answer.
    rng = np.random.default_rng(1)
    site = np.array([1.0, 0.0, 0.0, 1.0]) + rng.normal(0, 0.05, (6, 4))
    stock = np.concatenate(
        [
            np.array([1.0, 0.0, 0.0, 0.0]) + rng.normal(0, 0.05, (40, 4)),
            np.array([0.0, 1.0, 0.0, 0.0]) + rng.normal(0, 0.05, (40, 4)),
        ]
    )
    args = (np.full((6, 2), 0.5), np.array([[False, True]] * 6), np.arange(6), 1.0, 2, 0.0)
    # Both queries pass the similarity gate (0.8); only the domain tells them apart.
    plain = replace(build_site_memory(site, *args), gate=0.8)
    gated = replace(build_site_memory(site, *args, stock=stock), gate=0.8)
    assert gated.domain is not None and plain.domain is None
    queries = np.array([[1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.3]])
    like = gated.site_likeness(queries)
    assert like[0] > 0.9 and like[1] < 0.5
    probs = np.array([[0.9, 0.1]] * 2)
    assert (plain.site_likeness(queries) == 1).all()
    np.testing.assert_allclose(mixed_probs(probs, plain, queries)[:, 1], 1.0)  # both answered
    gated_mix = mixed_probs(probs, gated, queries)
    assert gated_mix[0].argmax() == 1  # site-like: the correction's bin
    assert gated_mix[1].argmax() == 0  # stock-like: mostly the head's answer


def test_domain_fit_separates_and_weights_classes_equally() -> None:
    rng = np.random.default_rng(2)
    site = rng.normal(0, 1, (5, 8)) + np.r_[3.0, np.zeros(7)]
    stock = rng.normal(0, 1, (500, 8))
    w = fit_domain(site, stock)
    assert w.shape == (9,)
    z = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True) @ w[:-1] + w[-1]  # noqa: E731
    # 5 site photos against 500 stock: still called site, because the classes weigh the same.
    assert (z(site) > 0).mean() >= 0.8 and (z(stock) < 0).mean() >= 0.8


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
    args = (np.full((2, 3), 1 / 3), landfill, np.arange(2), 0.8, 1, 0.0)
    red = np.full((32, 32, 3), (220, 30, 30), np.uint8)
    _, stock = OnnxClassifier(color_bundle).run([blue, red, blue[::2], red[::2]], True)
    for name, mem in (
        ("plain", build_site_memory(emb[:2], *args)),
        ("domain", build_site_memory(emb[:2], *args, stock=stock)),
    ):
        out = build_bundle(backbone, layers, meta, tmp_path / f"{name}.onnx", site=mem)
        clf = OnnxClassifier(out)
        logits, _ = clf.run([yellow, blue])
        head = emb[[0, 2]] @ layers[0][0].T
        expected = mixed_logits(head, 1.7, mem, emb[[0, 2]])
        np.testing.assert_allclose(logits, expected, atol=1e-4, err_msg=name)
        got = clf.predict([yellow, blue])
        assert got[0].bin == "landfill", name  # the head alone says compost/landfill tie
        assert got[1].bin == "recycling", name
