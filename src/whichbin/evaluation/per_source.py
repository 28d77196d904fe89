"""Metrics per data source: how a model does on each place's photos, not one blended figure.

Pure numpy: probabilities, true labels and each row's source in, a table out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from whichbin.contract import BINS


def per_source_metrics(
    probs: np.ndarray,
    model_labels: Sequence[str],
    true_labels: Sequence[str],
    sources: Sequence[str],
    label_to_bin: Mapping[str, str],
    threshold: float | None = None,
    familiar: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """``{source: {n, accuracy, bin_accuracy, bin_recall, [coverage, decided_accuracy]}}``.

    Args:
        probs: Calibrated label probabilities [N, len(model_labels)].
        model_labels: The model's labels (columns of ``probs``).
        true_labels: Each row's true label; it may be one the model does not know.
        sources: Each row's data source.
        label_to_bin: Bin of every model label and every true label.
        threshold: The unsure threshold on the top bin probability; when given, each source
            also gets ``coverage`` (share decided) and ``decided_accuracy``.
        familiar: Rows that passed the open-set familiarity check (None: all did).

    The bin prediction is the bin with the largest summed probability (as the edge
    decides). Label accuracy counts only rows whose label the model knows (``None`` when
    there are none); bin metrics count every row.
    """
    n = len(true_labels)
    if len(sources) != n or len(probs) != n:
        raise ValueError(f"{len(probs)} probability rows, {n} labels, {len(sources)} sources")
    bins = sorted(
        {label_to_bin[lab] for lab in model_labels} | {label_to_bin[t] for t in true_labels}
    )
    bidx = {b: i for i, b in enumerate(bins)}
    bprobs = np.zeros((n, len(bins)))
    for j, lab in enumerate(model_labels):
        bprobs[:, bidx[label_to_bin[lab]]] += probs[:, j]
    bpred = bprobs.argmax(1) if n else np.zeros(0, np.int64)
    btrue = np.array([bidx[label_to_bin[t]] for t in true_labels], dtype=np.int64)
    bcorrect = bpred == btrue
    lpred = [model_labels[i] for i in probs.argmax(1)] if n else []
    model_set = set(model_labels)
    known = np.array([t in model_set for t in true_labels], dtype=bool)
    lcorrect = np.array([p == t for p, t in zip(lpred, true_labels, strict=True)], dtype=bool)
    decided = bprobs.max(1) >= threshold if threshold is not None and n else None
    if decided is not None and familiar is not None:
        decided &= np.asarray(familiar, bool)
    src = np.asarray(sources, dtype=object)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(sources)):
        rows = src == name
        k = known & rows
        row: dict[str, Any] = {
            "n": int(rows.sum()),
            "accuracy": float(lcorrect[k].mean()) if k.any() else None,
            "bin_accuracy": float(bcorrect[rows].mean()),
            "bin_recall": {
                b: float(bcorrect[rows & (btrue == i)].mean())
                for b, i in bidx.items()
                if (rows & (btrue == i)).any()
            },
        }
        if decided is not None:
            d = decided & rows
            row["coverage"] = float(d.sum() / rows.sum())
            row["decided_accuracy"] = float(bcorrect[d].mean()) if d.any() else None
        out[name] = row
    return out


# Shares are percentages; recall is per bin, compost / landfill / recycling.
PER_SOURCE_COLUMNS = ("source", "images", "label", "bin", "recall C/L/R", "decided", "correct")


def per_source_rows(per_source: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """Rows of text for a per-source table (columns: ``PER_SOURCE_COLUMNS``)."""

    def pct(v: Any) -> str:
        return "–" if v is None else f"{100 * float(v):.1f}"

    rows = []
    for name, m in per_source.items():
        rec = m.get("bin_recall", {})
        recall = "/".join(pct(rec.get(b)) for b in BINS)
        rows.append(
            [
                name,
                str(m.get("n", 0)),
                pct(m.get("accuracy")),
                pct(m.get("bin_accuracy")),
                recall or "–",
                pct(m.get("coverage")),
                pct(m.get("decided_accuracy")),
            ]
        )
    return rows
