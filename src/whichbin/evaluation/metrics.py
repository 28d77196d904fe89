"""Classification metrics on label indices, plus the same at bin level. Pure numpy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from whichbin.evaluation.calibration import expected_calibration_error


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """n×n counts, rows = truth, columns = prediction."""
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def _recall_f1(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(float)
    support = cm.sum(1)
    predicted = cm.sum(0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return recall, f1


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    label_to_bin: Mapping[str, str],
    threshold: float | None = None,
    familiar: np.ndarray | None = None,
) -> dict:
    """Accuracy, macro-F1, per-label and per-bin recall, confusion matrices, ECE.

    ``probs`` are calibrated label probabilities [N, labels]. The bin prediction is the bin
    with the largest summed probability (as the edge decides). An item is decided when its
    bin confidence reaches ``threshold`` and, where ``familiar`` (bool per row) is given,
    it passed the open-set familiarity check too.
    """
    y = np.asarray(y_true, dtype=np.int64)
    n = len(labels)
    pred = probs.argmax(1) if len(y) else np.zeros(0, np.int64)
    cm = confusion(y, pred, n)
    recall, f1 = _recall_f1(cm)
    present = cm.sum(1) > 0
    bins = sorted(set(label_to_bin[lab] for lab in labels))
    bidx = {b: i for i, b in enumerate(bins)}
    lab2b = np.array([bidx[label_to_bin[lab]] for lab in labels])
    bprobs = np.zeros((len(y), len(bins)))
    for j in range(n):
        bprobs[:, lab2b[j]] += probs[:, j]
    bpred = bprobs.argmax(1) if len(y) else np.zeros(0, np.int64)
    btrue = lab2b[y] if len(y) else np.zeros(0, np.int64)
    bcm = confusion(btrue, bpred, len(bins))
    brecall, _ = _recall_f1(bcm)
    bconf = bprobs.max(1) if len(y) else np.zeros(0)
    bcorrect = bpred == btrue
    out = {
        "n": int(len(y)),
        "accuracy": float(np.mean(pred == y)) if len(y) else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "bin_accuracy": float(np.mean(bcorrect)) if len(y) else 0.0,
        "label_recall": {labels[i]: float(recall[i]) for i in range(n) if present[i]},
        "bin_recall": {b: float(brecall[i]) for b, i in bidx.items() if bcm[i].sum() > 0},
        "ece": expected_calibration_error(probs.max(1), pred == y) if len(y) else 0.0,
        "bin_ece": expected_calibration_error(bconf, bcorrect) if len(y) else 0.0,
        "confusion": cm.tolist(),
        "labels": list(labels),
        "bin_confusion": bcm.tolist(),
        "bins": bins,
    }
    if threshold is not None and len(y):
        decided = bconf >= threshold
        if familiar is not None:
            decided &= np.asarray(familiar, bool)
        out["threshold"] = float(threshold)
        out["coverage"] = float(decided.mean())
        out["decided_accuracy"] = float(bcorrect[decided].mean()) if decided.any() else 0.0
    return out


def bin_metrics(
    probs: np.ndarray,
    true_bins: Sequence[str],
    labels: Sequence[str],
    label_to_bin: Mapping[str, str],
) -> dict:
    """Bin accuracy and per-bin recall when truth is given as bins."""
    bins = sorted(set(true_bins) | {label_to_bin[lab] for lab in labels})
    bidx = {b: i for i, b in enumerate(bins)}
    bprobs = np.zeros((len(true_bins), len(bins)))
    for j, lab in enumerate(labels):
        bprobs[:, bidx[label_to_bin[lab]]] += probs[:, j]
    pred = bprobs.argmax(1)
    true = np.array([bidx[b] for b in true_bins])
    cm = confusion(true, pred, len(bins))
    recall, _ = _recall_f1(cm)
    return {
        "bin_accuracy": float(np.mean(pred == true)) if len(true) else 0.0,
        "bin_recall": {b: float(recall[i]) for b, i in bidx.items() if cm[i].sum() > 0},
        "bin_confusion": cm.tolist(),
        "bins": bins,
    }
