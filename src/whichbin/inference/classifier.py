"""ONNX Runtime classifier for a whichbin bundle: the one inference path used by
``classify``, evaluation and the edge runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from whichbin.errors import ModelError
from whichbin.inference.bundle import BundleMeta, read_meta
from whichbin.inference.hashing import sha256_file
from whichbin.inference.preprocess import to_tensor
from whichbin.inference.scores import softmax
from whichbin.rules import Prediction, RulePack, predict_from_probs


class OnnxClassifier:
    """Loads a bundle once; classifies RGB uint8 arrays or PIL images in batches."""

    def __init__(self, path: Path, rules: RulePack | None = None, threads: int = 0) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.meta: BundleMeta = read_meta(self.path)
        self.sha256 = sha256_file(self.path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.path), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as e:
            raise ModelError(f"{self.path}: ONNX Runtime cannot load it: {e}") from e
        self.input_name = self.session.get_inputs()[0].name
        outputs = {o.name for o in self.session.get_outputs()}
        if "logits" not in outputs:
            raise ModelError(f"{self.path}: bundle has no 'logits' output")
        self.has_embedding = "embedding" in outputs
        self.has_familiarity = "familiarity" in outputs
        # Model-specific, so it comes from the bundle whatever rule pack is applied.
        fam = self.meta.rules.get("familiarity")
        self.min_familiarity = float(fam) if fam is not None and self.has_familiarity else None
        self.labels = list(self.meta.labels)
        if rules is not None:
            self.label_to_bin = rules.restricted_to(self.labels)
            self.threshold = rules.threshold
            self.rules_ref = {"name": rules.name, "version": rules.version}
        else:
            self.label_to_bin = {lab: self.meta.bins[lab] for lab in self.labels}
            self.threshold = self.meta.threshold
            self.rules_ref = {
                "name": str(self.meta.rules.get("name", "bundle")),
                "version": str(self.meta.rules.get("version", "1")),
            }

    @property
    def version(self) -> str:
        return self.meta.version

    def run(
        self, images: list, with_embedding: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw logits (and embeddings) for a batch of images."""
        x = to_tensor(images, self.meta.preprocess)
        names = ["logits", "embedding"] if with_embedding and self.has_embedding else ["logits"]
        out = self.session.run(names, {self.input_name: x})
        return out[0], (out[1] if len(out) > 1 else None)

    def probs(self, images: list) -> np.ndarray:
        """Calibrated probabilities [N, labels]."""
        return self.scores(images)[0]

    def scores(self, images: list) -> tuple[np.ndarray, np.ndarray | None]:
        """Calibrated probabilities [N, labels] and familiarity [N] (None when the bundle
        has no familiarity output, e.g. bundles made before it existed)."""
        x = to_tensor(images, self.meta.preprocess)
        names = ["logits", "familiarity"] if self.has_familiarity else ["logits"]
        out = self.session.run(names, {self.input_name: x})
        fam = out[1].reshape(-1) if len(out) > 1 else None
        return softmax(out[0], self.meta.temperature), fam

    def predict(self, images: list, k: int = 3) -> list[Prediction]:
        """Bin decisions for a batch of images."""
        probs, fam = self.scores(images)
        return [
            predict_from_probs(
                p,
                self.labels,
                self.label_to_bin,
                self.threshold,
                k,
                None if fam is None else float(fam[i]),
                self.min_familiarity,
            )
            for i, p in enumerate(probs)
        ]
