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
