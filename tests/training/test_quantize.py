"""INT8 static quantization keeps the bundle contract and the answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.helpers import COLORS, solid_image
from whichbin.inference import BundleMeta, OnnxClassifier, read_meta
from whichbin.training.export import build_bundle
from whichbin.training.quantize import quantize_bundle

# Metadata for a bundle built on _conv_backbone (32 px input, 8-d embedding, three labels).
CONV_META = BundleMeta(
    labels=["trash", "organic", "plastic"],
    bins={"trash": "landfill", "organic": "compost", "plastic": "recycling"},
    preprocess={"size": 32},
    rules={"name": "t", "version": "1", "threshold": 0.5},
    version="v1",
)


def _conv_backbone(path: Path) -> Path:
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)
    w[:3, :, 1, 1] += np.eye(3, dtype=np.float32) * 2  # three filters that see R, G, B
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "cw", "cb"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("Conv", ["r", "cw2", "cb"], ["c2"]),
            helper.make_node("Relu", ["c2"], ["r2"]),
            helper.make_node("GlobalAveragePool", ["r2"], ["p"]),
            helper.make_node("Flatten", ["p"], ["embedding"], axis=1),
        ],
        "conv",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 8])],
        initializer=[
            numpy_helper.from_array(w, "cw"),
            numpy_helper.from_array(np.eye(8, dtype=np.float32)[:, :, None, None], "cw2"),
            numpy_helper.from_array(np.zeros(8, np.float32), "cb"),
        ],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def test_int8_bundle_keeps_outputs_metadata_and_answers(tmp_path: Path) -> None:
    head_w = np.zeros((3, 8), np.float32)
    head_w[:, :3] = np.eye(3) * 4
    meta = CONV_META
    fp32 = build_bundle(
        _conv_backbone(tmp_path / "bb.onnx"),
        [(head_w, np.zeros(3, np.float32))],
        meta,
        tmp_path / "fp32.onnx",
    )
    photos = []
    for b, rgb in COLORS.items():
        for j in range(8):
            photos.append(
                solid_image(tmp_path / f"{b}{j}.jpg", tuple(min(255, c + 4 * j) for c in rgb))
            )
    int8 = quantize_bundle(fp32, photos[::2], tmp_path / "int8.onnx")
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert read_meta(int8).labels == meta.labels and read_meta(int8).version == "v1"
    a, b = OnnxClassifier(fp32), OnnxClassifier(int8)
    from PIL import Image

    imgs = [Image.open(p).convert("RGB") for p in photos]
    assert [p.bin for p in a.predict(imgs)] == [p.bin for p in b.predict(imgs)]
    _, emb = b.run(imgs[:2], with_embedding=True)
    assert emb is not None and emb.shape == (2, 8)


def _same_padding_backbone(path: Path) -> Path:
    """A TF-style "same"-padded strided conv net, exported the way timm's Lite0 is: the
    padding amounts are computed from the input's shape inside the graph."""
    import torch
    from timm.layers import create_conv2d

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        create_conv2d(3, 16, 3, stride=2, padding="same"),
        torch.nn.ReLU6(),
        create_conv2d(16, 16, 5, stride=2, padding="same", depthwise=True),
        torch.nn.ReLU6(),
        create_conv2d(16, 8, 1),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    ).eval()
    torch.onnx.export(
        net,
        torch.zeros(1, 3, 32, 32),
        str(path),
        input_names=["input"],
        output_names=["embedding"],
        dynamic_axes={"input": {0: "N"}, "embedding": {0: "N"}},
        opset_version=17,
        dynamo=False,
    )
    return path


def test_shape_arithmetic_stays_float_so_padding_is_not_shifted(tmp_path: Path) -> None:
    from PIL import Image

    from whichbin.inference import PreprocessSpec, to_tensor
    from whichbin.training.quantize import _shape_nodes, quantize_onnx

    src = _same_padding_backbone(tmp_path / "same.onnx")
    graph = onnx.load(str(src)).graph
    shape_math = _shape_nodes(graph)
    ops = {n.op_type for n in graph.node if n.name in shape_math}
    assert "Shape" in ops and not ops & {"Conv", "Pad"}
    rng = np.random.default_rng(1)
    photos = []
    for i in range(12):
        p = tmp_path / f"noise{i}.png"
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(p)
        photos.append(p)
    spec = PreprocessSpec(size=32)
    import onnxruntime as ort

    from whichbin.training.quantize import Int8Recipe

    x = to_tensor([Image.open(p).convert("RGB") for p in photos[8:]], spec)

    def cosine(recipe: Int8Recipe) -> np.ndarray:
        out = quantize_onnx(src, photos[:8], spec, tmp_path / "same_int8.onnx", recipe=recipe)
        a, b = (
            ort.InferenceSession(str(f), providers=["CPUExecutionProvider"]).run(
                None, {"input": x}
            )[0]
            for f in (src, out)
        )
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    shipped, shape_math_quantized = cosine(Int8Recipe()), cosine(Int8Recipe(shape_math_float=False))
    assert shipped.min() > 0.98 > shape_math_quantized.min(), (shipped, shape_math_quantized)


@pytest.mark.parametrize("group", [1, 2, 6])
def test_bias_shift_is_the_mean_output_change_of_7bit_weights(group: int) -> None:
    import torch

    from whichbin.training.quantize import WEIGHT_QMAX, bias_shift

    rng = np.random.default_rng(group)
    w = rng.normal(0, 1, (6, 6 // group, 3, 3)).astype(np.float32)
    w[0, 0, 0, 0] = 9.0  # one large weight: coarse steps for channel 0
    x = (rng.normal(2.0, 1.0, (64, 6, 9, 9)) * np.arange(1, 7)[:, None, None]).astype(np.float32)
    scale = np.abs(w).reshape(6, -1).max(1) / WEIGHT_QMAX
    wq = np.round(w / scale[:, None, None, None]) * scale[:, None, None, None]

    def out(weights: np.ndarray) -> np.ndarray:
        y = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weights), groups=group)
        return y.double().mean(dim=(0, 2, 3)).numpy()

    actual = out(wq.astype(np.float32)) - out(w)
    predicted = bias_shift(w, x.astype(np.float64).mean(axis=(0, 2, 3)), group)
    assert np.abs(actual).max() > 1e-3  # the rounding does move the outputs
    np.testing.assert_allclose(predicted, actual, rtol=0.05, atol=5e-3)
