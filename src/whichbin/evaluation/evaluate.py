"""Run a bundle (the exported ONNX file: what ships is what is measured) on a split."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from whichbin.evaluation.metrics import classification_metrics
from whichbin.rules import RulePack
from whichbin.training.embeddings import load_rgb

logger = logging.getLogger(__name__)


def bundle_probs(
    bundle: Path, paths: Sequence[Path], batch: int = 32
) -> tuple[np.ndarray, list[str]]:
    """Calibrated probabilities of a bundle on image files, and its label list."""
    from whichbin.edge.classifier import OnnxClassifier

    clf = OnnxClassifier(bundle)
    out = []
    for i in range(0, len(paths), batch):
        out.append(clf.probs([load_rgb(p) for p in paths[i : i + batch]]))
    probs = np.concatenate(out) if out else np.zeros((0, len(clf.labels)))
    return probs, clf.labels


def evaluate_bundle(
    bundle: Path,
    paths: Sequence[Path],
    true_labels: Sequence[str],
    rules: RulePack,
    threshold: float | None = None,
) -> dict:
    """Metrics of a bundle on labelled images.

    Bin-level metrics use every image; label-level ones only the images whose label the
    bundle knows (an older model may have fewer labels).
    """
    probs, labels = bundle_probs(bundle, paths)
    index = {lab: i for i, lab in enumerate(labels)}
    known = np.array([lab in index for lab in true_labels], dtype=bool)
    label_to_bin = rules.restricted_to(sorted(set(labels) | set(true_labels)))
    y = np.array([index[lab] for lab in np.asarray(true_labels)[known]], dtype=np.int64)
    m = classification_metrics(y, probs[known], labels, label_to_bin, threshold)
    if not known.all():
        # Bin metrics over all images: add unknown-label rows through their true bins.
        from whichbin.evaluation.metrics import bin_metrics

        m.update(bin_metrics(probs, [label_to_bin[t] for t in true_labels], labels, label_to_bin))
    return m


def evaluate_embedded(
    bundle: Path,
    paths: Sequence[Path],
    true_labels: Sequence[str],
    embeddings: np.ndarray,
    layers: list,
    temperature: float,
    rules: RulePack,
    threshold: float | None = None,
    parity_images: int = 16,
) -> dict:
    """Metrics of a head-on-cached-embeddings bundle, proven equal to the ONNX file.

    The bundle is the cached-embedding backbone plus this head, so its logits are
    ``head(embedding)``. The exported file is run on ``parity_images`` test images and its
    logits compared; on any mismatch the whole split is run through the file instead.
    """
    from whichbin.edge.classifier import OnnxClassifier, softmax
    from whichbin.training.heads import forward

    clf = OnnxClassifier(bundle)
    logits = forward(layers, embeddings)
    n = min(parity_images, len(paths))
    onnx_logits, _ = clf.run([load_rgb(p) for p in paths[:n]])
    diff = float(np.max(np.abs(onnx_logits - logits[:n]))) if n else 0.0
    if diff > 1e-3 * max(1.0, float(np.max(np.abs(logits[:n]))) if n else 1.0):
        logger.warning(
            "%s: ONNX logits differ from the head's by %.2g; running every image", bundle, diff
        )
        m = evaluate_bundle(bundle, paths, true_labels, rules, threshold)
        m["parity"] = {"images": n, "max_abs_logit_diff": diff, "full_onnx_run": True}
        return m
    labels = clf.labels
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.array([index[lab] for lab in true_labels], dtype=np.int64)
    probs = softmax(logits, temperature)
    m = classification_metrics(y, probs, labels, rules.restricted_to(labels), threshold)
    m["parity"] = {"images": n, "max_abs_logit_diff": diff, "full_onnx_run": False}
    return m
