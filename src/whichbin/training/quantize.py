"""INT8 static quantization with ONNX Runtime (per-channel 7-bit weights, QDQ format), calibrated
on training images. The metadata (labels, bins, preprocessing) is carried over."""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from whichbin.inference import PREFIX, BundleMeta, PreprocessSpec, read_meta, to_tensor, write_meta
from whichbin.training.embeddings import load_rgb

logger = logging.getLogger(__name__)


class _ImageReader:
    """CalibrationDataReader over image files, one preprocessed batch at a time."""

    def __init__(self, paths: Sequence[Path], spec, input_name: str, batch: int = 8) -> None:  # noqa: ANN001
        self._batches: Iterator[list[Path]] = iter(
            [list(paths[i : i + batch]) for i in range(0, len(paths), batch)]
        )
        self.spec, self.input_name = spec, input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        if batch is None:
            return None
        return {self.input_name: to_tensor([load_rgb(p) for p in batch], self.spec)}

    def rewind(self) -> None:  # pragma: no cover - ORT API compatibility
        pass


@dataclass(frozen=True)
class Int8Recipe:
    """What keeps Lite0 accurate in INT8. Every step defaults to on (what the pipeline
    ships); ``bench/int8_latency.py`` turns them on one by one to measure each."""

    shape_math_float: bool = True  # see _shape_nodes
    weights_7bit: bool = True  # reduce_range, against int16 saturation without VNNI
    stem_float: bool = True  # see _stem_convs
    bias_correction: bool = True  # see bias_shift


def quantize_onnx(
    src: Path,
    calibration: Sequence[Path],
    spec: PreprocessSpec,
    out: Path,
    method: str = "minmax",
    recipe: Int8Recipe = Int8Recipe(),  # noqa: B008 - frozen, so a shared default is safe
) -> Path:
    """Write an INT8 copy of an ONNX graph (a backbone or a bundle) calibrated on images.

    Nodes named ``head.*`` (the classifier head) stay in float. Any whichbin metadata is
    carried over.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
    )
    from onnxruntime.quantization import quantize_static as _quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise ValueError(f"training.int8_method: {method!r} is not one of {sorted(methods)}")
    props = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    input_name = onnx.load(str(src), load_external_data=False).graph.input[0].name
    tmp_out = out.with_suffix(".tmp.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        _name_nodes(pre)
        exclude = _float_nodes(pre, recipe)
        if recipe.bias_correction:
            qmax = WEIGHT_QMAX if recipe.weights_7bit else WEIGHT_QMAX_8BIT
            reader = _ImageReader(list(calibration), spec, input_name, 16)
            _correct_biases(pre, reader, exclude, qmax)
        # ORT's calibrators print progress on stdout, which belongs to --json output.
        with contextlib.redirect_stdout(sys.stderr):
            _quantize_static(
                str(pre),
                str(tmp_out),
                # Histogram calibrators (entropy, percentile) need equal batch shapes: batch 1.
                _ImageReader(list(calibration), spec, input_name, 8 if method == "minmax" else 1),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                # 7-bit weights: x86 CPUs without VNNI multiply u8 x s8 pairs into int16
                # with saturation (vpmaddubsw), which cost 6-8 accuracy points on Lite0.
                # U8U8 avoids it too but runs ~5x slower than FP32 in ORT's kernels.
                reduce_range=recipe.weights_7bit,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
                calibrate_method=methods[method],
                nodes_to_exclude=exclude,
            )
    if PREFIX + "labels" in props:
        meta = BundleMeta.from_props(props, str(src))
        quant = int8_marker(method)
        write_meta(tmp_out, meta.model_copy(update={"metrics": {**meta.metrics, **quant}}))
    tmp_out.replace(out)
    return out


def int8_marker(method: str) -> dict[str, str]:
    """What an INT8 bundle's ``whichbin.metrics`` says about its quantization."""
    return {"quantization": f"int8-static-per-channel-{method}"}


# Pooling and flattening stay in float: a uint8 embedding is too coarse for a head whose
# input standardisation (folded into its weights) amplifies small feature differences.
FLOAT_OPS = {"GlobalAveragePool", "Flatten", "Reshape", "ReduceMean"}


# ORT's symmetric per-channel weights are integers in [-64, 64] with reduce_range (7 bits),
# else in [-127, 127].
WEIGHT_QMAX = 64
WEIGHT_QMAX_8BIT = 127


def bias_shift(
    w: np.ndarray, input_mean: np.ndarray, group: int, qmax: int = WEIGHT_QMAX
) -> np.ndarray:
    """The mean change of a convolution's outputs when its weights are rounded to integers in
    [-qmax, qmax] (per output channel, symmetric), given the mean of each input channel:
    subtracting it from the bias is "bias correction" (Nagel et al., 2019)."""
    w = w.astype(np.float64)
    scale = np.abs(w).reshape(len(w), -1).max(1) / qmax
    scale[scale == 0] = 1.0
    s4 = scale[:, None, None, None]
    per_input = (np.clip(np.round(w / s4), -qmax, qmax) * s4 - w).sum(axis=(2, 3))
    # Output channel c belongs to group c // (outputs per group) and sees that group's inputs.
    means = np.asarray(input_mean, np.float64).reshape(group, per_input.shape[1])
    return (per_input * means[np.arange(len(w)) // (len(w) // group)]).sum(1)


def _correct_biases(model_path: Path, reader: _ImageReader, exclude: list[str], qmax: int) -> None:
    """Fold :func:`bias_shift` into the biases of the convolutions that will be quantized,
    from their input means over the calibration images. On Lite0 it raises the INT8
    embedding's cosine to FP32 from 0.990 to 0.997."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    skip = set(exclude)
    convs = [n for n in graph.node if n.op_type == "Conv" and n.name not in skip]
    if not convs:
        return
    probe = onnx.load(str(model_path))
    inputs = list(dict.fromkeys(n.input[0] for n in convs))
    known = {o.name for o in probe.graph.output}
    for name in inputs:
        if name not in known:
            probe.graph.output.append(
                helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(
        probe.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    sums = {name: 0.0 for name in inputs}
    count = 0
    while (batch := reader.get_next()) is not None:
        outs = session.run(inputs, batch)
        for name, out in zip(inputs, outs, strict=True):
            sums[name] = sums[name] + out.mean(axis=(2, 3)).sum(0)
        count += len(next(iter(batch.values())))
    init = {t.name: t for t in graph.initializer}
    uses: dict[str, int] = {}
    for n in graph.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    for node in convs:
        w = numpy_helper.to_array(init[node.input[1]])
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        shift = bias_shift(w, np.asarray(sums[node.input[0]]) / count, group, qmax)
        if len(node.input) > 2 and node.input[2] and uses[node.input[2]] == 1:
            b = numpy_helper.to_array(init[node.input[2]])
            init[node.input[2]].CopyFrom(
                numpy_helper.from_array((b - shift).astype(np.float32), node.input[2])
            )
        else:  # no bias, or one shared with another node: give this node its own
            b = numpy_helper.to_array(init[node.input[2]]) if len(node.input) > 2 else np.zeros(1)
            name = f"{node.name}.corrected_bias"
            graph.initializer.append(numpy_helper.from_array((b - shift).astype(np.float32), name))
            del node.input[2:]
            node.input.append(name)
    onnx.save(model, str(model_path))


def _name_nodes(model_path: Path) -> None:
    """Give unnamed nodes a name: ORT excludes nodes by name, and "" would match them all."""
    import onnx

    model = onnx.load(str(model_path))
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    onnx.save(model, str(model_path))


def _float_nodes(model_path: Path, recipe: Int8Recipe = Int8Recipe()) -> list[str]:  # noqa: B008
    """Names of the nodes left in float: the head, the pooling into ``embedding``, and what
    the recipe keeps out (shape arithmetic, the stem's convolutions)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    shape_math = _shape_nodes(graph)
    keep = shape_math if recipe.shape_math_float else set()
    return [
        n.name
        for n in graph.node
        if n.name.startswith("head.") or n.op_type in FLOAT_OPS or n.name in keep
    ] + (_stem_convs(graph, shape_math) if recipe.stem_float else [])


def _stem_convs(graph, shape_math: set[str]) -> list[str]:  # noqa: ANN001
    """The convolutions before the first residual addition (Lite0: the stem and the first
    two blocks). Their channels have 9-27 weights each, so 7-bit rounding costs them the
    most; in float they raise the embedding's cosine to FP32 from 0.962 to 0.989 for
    about 5 % of the multiply-adds."""
    names: list[str] = []
    for node in graph.node:
        if node.op_type == "Add" and node.name not in shape_math:
            return names
        if node.op_type == "Conv":
            names.append(node.name)
    return []  # no residual connection: nothing singles out the first layers


def _shape_nodes(graph) -> set[str]:  # noqa: ANN001
    """Nodes that compute shapes rather than features: everything fed only by ``Shape``
    outputs and constants, such as the padding amounts of TF-style "same" convolutions.
    Quantizing those rounds a pad of 1.0 to 0.996, which becomes 0 when cast to an integer,
    and shifts every feature map after it by a pixel."""
    constant = {i.name for i in graph.initializer}
    derived: set[str] = set()
    names: set[str] = set()
    for node in graph.node:  # ONNX graphs are topologically sorted
        inputs = [i for i in node.input if i]
        if node.op_type == "Shape" or (
            node.op_type != "Constant"
            and inputs
            and all(i in derived or i in constant for i in inputs)
            and any(i in derived for i in inputs)
        ):
            derived.update(node.output)
            names.add(node.name)
        elif node.op_type == "Constant":
            constant.update(node.output)
    return names


def is_quantized(path: Path) -> bool:
    """Whether an ONNX graph already holds quantized tensors (an INT8 bundle or backbone)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.node)


def quantize_bundle(
    src: Path, calibration: Sequence[Path], out: Path, method: str = "minmax"
) -> Path:
    """Write an INT8 copy of a bundle calibrated on ``calibration`` images."""
    return quantize_onnx(src, calibration, read_meta(src).preprocess, out, method)
