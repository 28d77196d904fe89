"""Bundle metadata (SPEC "Model bundle"), the classifier that runs a bundle, and sha256."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.helpers import COLORS
from whichbin.errors import ModelError
from whichbin.inference import (
    PREFIX,
    HashingCopy,
    OnnxClassifier,
    default_model_path,
    read_meta,
    sha256_file,
    softmax,
    write_meta,
)


def _plain_model(path: Path) -> Path:
    """A valid ONNX file without whichbin metadata."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "plain",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def test_read_meta_names_the_file_when_not_a_bundle(tmp_path: Path) -> None:
    plain = _plain_model(tmp_path / "plain.onnx")
    with pytest.raises(ModelError, match="plain.onnx: not a whichbin bundle"):
        read_meta(plain)
    junk = tmp_path / "junk.onnx"
    junk.write_text("not onnx")
    with pytest.raises(ModelError, match="junk.onnx"):
        read_meta(junk)


def test_metadata_round_trip_and_a_bad_property_is_named(
    color_bundle: Path, tmp_path: Path
) -> None:
    path = Path(shutil.copy(color_bundle, tmp_path / "b.onnx"))
    meta = read_meta(path).model_copy(update={"temperature": 1.5, "version": "t/2"})
    write_meta(path, meta)
    assert read_meta(path) == meta
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == PREFIX + "temperature":
            prop.value = '"hot"'
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match=r"b.onnx: metadata whichbin\.temperature: .*number"):
        read_meta(path)


def test_classifier_probabilities_are_the_tempered_softmax(color_bundle: Path) -> None:
    clf = OnnxClassifier(color_bundle)
    images = [np.full((40, 30, 3), rgb, np.uint8) for rgb in COLORS.values()]
    logits, embedding = clf.run(images, with_embedding=True)
    assert embedding is not None and embedding.shape == (3, 3)
    np.testing.assert_allclose(clf.probs(images), softmax(logits, clf.meta.temperature))
    assert [p.bin for p in clf.predict(images)] == list(COLORS)
    assert clf.sha256 == sha256_file(color_bundle)


def test_default_model_is_a_bundle() -> None:
    path = default_model_path()
    if not path.is_file():
        pytest.skip("the default model is not built into this checkout")
    assert read_meta(path).labels


def test_sha256_file_and_hashing_copy_agree_with_hashlib(tmp_path: Path) -> None:
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)  # spans chunk boundaries
    path = tmp_path / "blob"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == sha256_file(path, chunk=1000) == expected
    out = io.BytesIO()
    copy = HashingCopy()
    assert copy.copy(io.BytesIO(data), out, chunk=1 << 16) == expected
    assert out.getvalue() == data and copy.size == len(data)


def test_bins_missing_a_label_is_named_not_a_key_error(color_bundle: Path, tmp_path: Path) -> None:
    path = Path(shutil.copy(color_bundle, tmp_path / "b.onnx"))
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == PREFIX + "bins":
            prop.value = json.dumps({"organic": "compost", "plastic": "recycling"})
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match=r"b.onnx: metadata whichbin\.bins: .*no bin .*trash"):
        OnnxClassifier(path)
