"""Temperature scaling, expected calibration error and the unsure threshold. Pure numpy."""

from __future__ import annotations

import numpy as np

from whichbin.inference import softmax


def nll(logits: np.ndarray, y: np.ndarray, t: float) -> float:
    p = softmax(logits, t)
    return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising validation NLL (golden-section search on log T)."""
    if len(y) == 0:
        return 1.0
    lo, hi = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(logits, y, np.exp(a)), nll(logits, y, np.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(logits, y, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(logits, y, np.exp(b))
    return float(np.exp((lo + hi) / 2))


def reliability(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Per-bin mean confidence, accuracy and count (for the reliability diagram)."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    out: dict[str, list[float]] = {
        "confidence": [],
        "accuracy": [],
        "count": [],
        "edges": list(edges),
    }
    for i in range(bins):
        m = idx == i
        out["count"].append(float(m.sum()))
        out["confidence"].append(float(conf[m].mean()) if m.any() else 0.0)
        out["accuracy"].append(float(correct[m].mean()) if m.any() else 0.0)
    return out


def expected_calibration_error(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE: count-weighted |accuracy − confidence| over equal-width bins."""
    if len(conf) == 0:
        return 0.0
    r = reliability(conf, correct, bins)
    n = len(conf)
    return float(
        sum(
            c / n * abs(a - m)
            for c, a, m in zip(r["count"], r["accuracy"], r["confidence"], strict=True)
        )
    )


def choose_threshold(
    conf: np.ndarray, correct: np.ndarray, target: float = 0.98, floor: float = 0.34
) -> tuple[float, float, float]:
    """Lowest threshold whose decided items are at least ``target`` accurate.

    Returns (threshold, precision of decided items, coverage = share decided).
    """
    if len(conf) == 0:
        return floor, 0.0, 0.0
    order = np.argsort(-conf)
    c, ok = conf[order], correct[order].astype(float)
    prec = np.cumsum(ok) / np.arange(1, len(ok) + 1)
    good = np.nonzero(prec >= target)[0]
    if len(good) == 0:
        return 1.0, 0.0, 0.0
    k = int(good.max())
    thr = max(float(c[k]), floor)
    decided = conf >= thr
    p = float(correct[decided].mean()) if decided.any() else 0.0
    return thr, p, float(decided.mean())
