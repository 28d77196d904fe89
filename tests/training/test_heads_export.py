"""Head training in numpy, bundle building and head replacement on a real ONNX graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from whichbin.inference import BundleMeta, OnnxClassifier, read_meta
from whichbin.training.export import build_bundle, replace_head
from whichbin.training.heads import forward, train_head


def _blobs(n: int = 300, d: int = 16, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (k, d))
    y = rng.integers(0, k, n)
    return centers[y] + rng.normal(0, 1, (n, d)) + 50.0, y  # offset: tests folded standardisation


@pytest.mark.parametrize("hidden", [0, 32])
def test_head_learns_separable_classes(hidden: int) -> None:
    xa, ya = _blobs(n=600)
    x, y, xv, yv = xa[:300], ya[:300], xa[300:], ya[300:]
    res = train_head(x, y, 3, xv[:100], yv[:100], hidden=hidden, epochs=150, lr=0.05)
    acc = np.mean(forward(res.layers, xv).argmax(1) == yv)
    assert acc > 0.95
    assert res.history["val_loss"][res.best_epoch - 1] == min(res.history["val_loss"])


def _tiny_backbone(path: Path, d: int = 3) -> Path:
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["p"]),
            helper.make_node("Flatten", ["p"], ["embedding"], axis=1),
        ],
        "bb",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", d])],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


META = BundleMeta(
    labels=["trash", "organic", "plastic"],
    bins={"trash": "landfill", "organic": "compost", "plastic": "recycling"},
    preprocess={"size": 16},
    rules={"name": "t", "version": "1", "threshold": 0.5},
)


def test_build_bundle_then_replace_head_without_torch(tmp_path: Path) -> None:
    bb = _tiny_backbone(tmp_path / "bb.onnx")
    eye = (np.eye(3, dtype=np.float32) * 5, np.zeros(3, np.float32))
    out = build_bundle(bb, [eye], META, tmp_path / "m.onnx")
    clf = OnnxClassifier(out)
    red = np.zeros((20, 20, 3), np.uint8)
    red[..., 0] = 250
    assert clf.predict([red])[0].bin == "landfill"
    logits, emb = clf.run([red], with_embedding=True)
    assert emb is not None and emb.shape == (1, 3)
    # Swap the head for a 2-layer MLP that maps red to "plastic".
    perm = np.eye(3, dtype=np.float32)[[1, 2, 0]] * 5  # logit 2 (plastic) reads red
    mlp = [
        (np.eye(3, dtype=np.float32), np.full(3, 1.0, np.float32)),
        (perm, np.zeros(3, np.float32)),
    ]
    new_meta = META.model_copy(update={"version": "retrained"})
    out2 = replace_head(out, mlp, new_meta, tmp_path / "m2.onnx")
    clf2 = OnnxClassifier(out2)
    assert clf2.predict([red])[0].label == "plastic"
    assert read_meta(out2).version == "retrained"
    ops = [n.op_type for n in onnx.load(str(out2)).graph.node]
    assert ops.count("Gemm") == 2 and ops.count("Relu") == 1  # old head gone
