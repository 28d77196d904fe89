"""Run a bundle (the exported ONNX file: what ships is what is measured) on a split."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from whichbin.evaluation.metrics import classification_metrics
from whichbin.rules import RulePack
from whichbin.training.embeddings import load_rgb

logger = logging.getLogger(__name__)


def bundle_logits(bundle: Path, paths: Sequence[Path], batch: int = 32) -> np.ndarray:
    """Raw logits [N, labels] of a bundle on image files."""
    from whichbin.inference import OnnxClassifier

    clf = OnnxClassifier(bundle)
    out = [
        clf.run([load_rgb(p) for p in paths[i : i + batch]])[0] for i in range(0, len(paths), batch)
    ]
    return np.concatenate(out) if out else np.zeros((0, len(clf.labels)), np.float32)


def bundle_probs(
    bundle: Path, paths: Sequence[Path], batch: int = 32
) -> tuple[np.ndarray, list[str]]:
    """Calibrated probabilities of a bundle on image files, and its label list."""
    from whichbin.inference import read_meta, softmax

    meta = read_meta(bundle)
    return softmax(bundle_logits(bundle, paths, batch), meta.temperature), list(meta.labels)


def metrics_from_probs(
    probs: np.ndarray,
    model_labels: Sequence[str],
    true_labels: Sequence[str],
    rules: RulePack,
    threshold: float | None = None,
    sources: Sequence[str] | None = None,
    familiar: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics of calibrated probabilities against true labels (no I/O).

    Bin-level metrics use every image; label-level ones only the images whose label the
    model knows (an older model may have fewer labels). With ``sources`` (each row's data
    source), ``per_source`` holds the same per source.
    """
    labels = list(model_labels)
    index = {lab: i for i, lab in enumerate(labels)}
    known = np.array([lab in index for lab in true_labels], dtype=bool)
    label_to_bin = rules.restricted_to(sorted(set(labels) | set(true_labels)))
    y = np.array([index[lab] for lab in np.asarray(true_labels)[known]], dtype=np.int64)
    fam_known = None if familiar is None else np.asarray(familiar, bool)[known]
    m = classification_metrics(y, probs[known], labels, label_to_bin, threshold, fam_known)
    if not known.all():
        # Bin metrics over all images: add unknown-label rows through their true bins.
        from whichbin.evaluation.metrics import bin_metrics

        m.update(bin_metrics(probs, [label_to_bin[t] for t in true_labels], labels, label_to_bin))
    if sources is not None:
        from whichbin.evaluation.per_source import per_source_metrics

        m["per_source"] = per_source_metrics(
            probs, labels, true_labels, sources, label_to_bin, threshold, familiar
        )
    return m


def evaluate_bundle(
    bundle: Path,
    paths: Sequence[Path],
    true_labels: Sequence[str],
    rules: RulePack,
    threshold: float | None = None,
    sources: Sequence[str] | None = None,
) -> dict:
    """Metrics of a bundle on labelled images (see :func:`metrics_from_probs`)."""
    probs, labels = bundle_probs(bundle, paths)
    return metrics_from_probs(probs, labels, true_labels, rules, threshold, sources)


def embedded_logits(
    bundle: Path,
    paths: Sequence[Path],
    embeddings: np.ndarray,
    layers: list,
    parity_images: int = 16,
    site: Any = None,
    temperature: float = 1.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Logits of a head-on-cached-embeddings bundle, proven equal to the ONNX file.

    The bundle is the cached-embedding backbone plus this head, so its logits are
    ``head(embedding)``. The exported file is run on ``parity_images`` images and its
    logits compared; on any mismatch every image is run through the file instead.
    Returns the logits and the parity record.
    """
    from whichbin.inference import OnnxClassifier
    from whichbin.training.heads import forward

    clf = OnnxClassifier(bundle)
    from whichbin.training.site_memory import mixed_logits

    logits = mixed_logits(forward(layers, embeddings), temperature, site, embeddings)
    n = min(parity_images, len(paths))
    onnx_logits, _ = clf.run([load_rgb(p) for p in paths[:n]])
    diff = float(np.max(np.abs(onnx_logits - logits[:n]))) if n else 0.0
    if diff > 1e-3 * max(1.0, float(np.max(np.abs(logits[:n]))) if n else 1.0):
        logger.warning(
            "%s: ONNX logits differ from the head's by %.2g; running every image", bundle, diff
        )
        full = bundle_logits(bundle, paths)
        return full, {"images": n, "max_abs_logit_diff": diff, "full_onnx_run": True}
    return logits, {"images": n, "max_abs_logit_diff": diff, "full_onnx_run": False}


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
    sources: Sequence[str] | None = None,
) -> dict:
    """Metrics of a head-on-cached-embeddings bundle (see :func:`embedded_logits`)."""
    from whichbin.inference import read_meta, softmax

    logits, parity = embedded_logits(bundle, paths, embeddings, layers, parity_images)
    labels = list(read_meta(bundle).labels)
    m = metrics_from_probs(
        softmax(logits, temperature), labels, true_labels, rules, threshold, sources
    )
    m["parity"] = parity
    return m
