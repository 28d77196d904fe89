"""Classifier heads trained on cached embeddings, in numpy (no torch: runs on a Pi).

A head is a list of dense layers ``[(W [out, in], b [out]), ...]`` with ReLU between them,
exactly what ``export.build_bundle`` appends to the backbone graph. Input standardisation is
folded into the first layer, so the bundle takes raw embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from whichbin.inference import softmax

Layers = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class HeadResult:
    layers: Layers
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0


def forward(layers: Layers, x: np.ndarray) -> np.ndarray:
    """Logits of a head on embeddings."""
    h = x
    for i, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    return h


def class_weights(y: np.ndarray, n_classes: int, cap: float = 5.0) -> np.ndarray:
    """Inverse-frequency weights, capped at ``cap``: a label with a handful of photos (a
    user's first few of a new kind) must not outweigh everything else."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return np.minimum(w, cap)


def label_targets(y: np.ndarray, n_classes: int) -> np.ndarray:
    """One-hot target masks for labelled rows."""
    return np.eye(n_classes, dtype=bool)[y]


def bin_targets(bins_of_rows: list[str], labels: list[str], label_to_bin: dict) -> np.ndarray:
    """Target masks for bin-only rows (a correction says "compost", not which label): every
    label of that bin is an acceptable answer, and the loss asks only that their summed
    probability be high."""
    return np.array([[label_to_bin[lab] == b for lab in labels] for b in bins_of_rows], bool)


def train_head(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    hidden: int = 0,
    epochs: int = 300,
    lr: float = 0.05,
    weight_decay: float = 0.01,
    balance: bool = True,
    seed: int = 0,
    patience: int = 50,
    targets: np.ndarray | None = None,
    row_weight: np.ndarray | None = None,
    init: Layers | None = None,
) -> HeadResult:
    """Full-batch Adam on softmax cross-entropy; keeps the epoch with the best val loss.

    ``hidden`` > 0 gives a one-hidden-layer MLP, else a linear (logistic) head. Training
    stops ``patience`` epochs after the best validation loss. Computed in float32.

    ``targets`` (rows × classes, bool) generalises ``y``: a row's loss is
    ``-log sum(p[allowed])``, so a bin-only row is satisfied by any label of its bin; for
    those rows ``y`` only picks the class weight (any label of the bin). ``row_weight``
    multiplies each row's weight (a site's own photos count more than one stock photo).
    ``init`` (a previous head of the same shape, as returned) warm-starts the weights: an
    update with a few new photos then needs a fraction of the epochs.
    """
    rng = np.random.default_rng(seed)
    f32 = np.float32
    x = np.asarray(x, f32)
    mu, sd = x.mean(0), x.std(0) + f32(1e-6)
    xs = (x - mu) / sd
    xv = None if x_val is None else (np.asarray(x_val, f32) - mu) / sd
    dims = [x.shape[1], *([hidden] if hidden else []), n_classes]
    params = []
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        params += [
            (rng.normal(0, np.sqrt(2.0 / a), (b, a)) * (0.1 if b == n_classes else 1)).astype(f32),
            np.zeros(b, f32),
        ]
    if init is not None and [w.shape for w, _ in init] == [p.shape for p in params[::2]]:
        # Unfold the previous standardisation with this data's: W' = W sd, b' = b + W mu.
        params = [np.asarray(a, f32).copy() for layer in init for a in layer]
        params[1] = (params[1] + params[0] @ mu).astype(f32)
        params[0] = (params[0] * sd).astype(f32)
    cw = class_weights(y, n_classes) if balance else np.ones(n_classes)
    sw = cw[y].astype(f32)
    if row_weight is not None:
        sw = sw * np.asarray(row_weight, f32)
    sw = sw / sw.sum()
    mask = (label_targets(y, n_classes) if targets is None else targets).astype(f32)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2 = 0.9, 0.999
    best = (np.inf, [p.copy() for p in params], 0)
    hist: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_acc": []}
    for ep in range(1, epochs + 1):
        # forward
        acts = [xs]
        h = xs
        for i in range(0, len(params), 2):
            h = h @ params[i].T + params[i + 1]
            if i < len(params) - 2:
                h = np.maximum(h, 0)
            acts.append(h)
        p = softmax(acts[-1])
        # d/dz of -log sum_{j allowed} p_j is p - (mask * p) / sum(mask * p): for one-hot
        # masks exactly the usual p - onehot.
        mp = mask * p
        allowed = mp.sum(1, keepdims=True) + 1e-12
        loss = -np.sum(sw * np.log(allowed[:, 0]))
        grad = (p - mp / allowed) * sw[:, None]
        grads: list[np.ndarray] = [np.zeros(0)] * len(params)
        for li in range(len(params) // 2 - 1, -1, -1):
            w = params[2 * li]
            grads[2 * li] = grad.T @ acts[li] + weight_decay * w
            grads[2 * li + 1] = grad.sum(0)
            if li > 0:
                grad = (grad @ w) * (acts[li] > 0)
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            mh, vh = m[i] / (1 - b1**ep), v[i] / (1 - b2**ep)
            params[i] = params[i] - lr * mh / (np.sqrt(vh) + 1e-8)
        hist["train_loss"].append(float(loss))
        if xv is not None and y_val is not None and len(y_val):
            lv = _unfold(params)
            pv = softmax(forward(lv, xv))
            vl = float(-np.mean(np.log(pv[np.arange(len(y_val)), y_val] + 1e-12)))
            hist["val_loss"].append(vl)
            hist["val_acc"].append(float(np.mean(pv.argmax(1) == y_val)))
            if vl < best[0]:
                best = (vl, [q.copy() for q in params], ep)
            elif ep - best[2] >= patience:
                break
    final, best_epoch = (best[1], best[2]) if best[2] else (params, len(hist["train_loss"]))
    layers = _unfold(final)
    # Fold standardisation into the first layer: W (x - mu)/sd + b = (W/sd) x + (b - W mu/sd)
    w0, b0 = layers[0]
    layers[0] = ((w0 / sd).astype(np.float32), (b0 - (w0 / sd) @ mu).astype(np.float32))
    layers = [(w.astype(np.float32), b.astype(np.float32)) for w, b in layers]
    return HeadResult(layers=layers, history=hist, best_epoch=best_epoch)


def _unfold(params: list[np.ndarray]) -> Layers:
    return [(params[i], params[i + 1]) for i in range(0, len(params), 2)]
