"""INT8 static quantization with ONNX Runtime (per-channel weights, QDQ format), calibrated
on training images. The metadata (labels, bins, preprocessing) is carried over."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from whichbin.preprocess import to_tensor
from whichbin.training.bundle import read_meta, write_meta
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


def quantize_bundle(
    src: Path, calibration: Sequence[Path], out: Path, method: str = "minmax"
) -> Path:
    """Write an INT8 copy of a bundle calibrated on ``calibration`` images."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    meta = read_meta(src)
    input_name = onnx.load(str(src), load_external_data=False).graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        reader = _ImageReader(list(calibration), meta.preprocess, input_name)
        tmp_out = out.with_suffix(".tmp.onnx")
        quantize_static(
            str(pre),
            str(tmp_out),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method={
                "minmax": CalibrationMethod.MinMax,
                "entropy": CalibrationMethod.Entropy,
                "percentile": CalibrationMethod.Percentile,
            }[method],
            # The head stays in float: it is tiny and its logits feed calibration.
            nodes_to_exclude=[
                n.name for n in onnx.load(str(pre)).graph.node if n.name.startswith("head.")
            ],
        )
    meta = meta.model_copy(
        update={"metrics": {**meta.metrics, "quantization": "int8-static-per-channel"}}
    )
    write_meta(tmp_out, meta)
    tmp_out.replace(out)
    return out
