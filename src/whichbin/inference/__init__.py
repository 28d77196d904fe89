"""Reading and running model bundles: the neutral package every stage imports downward.

Metadata (``bundle``), preprocessing, the ONNX Runtime classifier, the softmax and the
sha256 that names a bundle live here, so training, evaluation, the registry, deployment
and the edge share one definition of each. It imports no other stage package.
"""

from whichbin.inference.bundle import (
    DEFAULT_MODEL_FILE,
    PREFIX,
    BundleMeta,
    default_model_path,
    now_iso,
    read_meta,
    write_meta,
)
from whichbin.inference.classifier import OnnxClassifier
from whichbin.inference.hashing import HashingCopy, sha256_file
from whichbin.inference.preprocess import PreprocessSpec, resize_image, to_tensor
from whichbin.inference.scores import softmax

__all__ = [
    "DEFAULT_MODEL_FILE",
    "PREFIX",
    "BundleMeta",
    "HashingCopy",
    "OnnxClassifier",
    "PreprocessSpec",
    "default_model_path",
    "now_iso",
    "read_meta",
    "resize_image",
    "sha256_file",
    "softmax",
    "to_tensor",
    "write_meta",
]
