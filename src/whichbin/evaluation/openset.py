"""Open-set "unsure": how familiar an image is to what the model was trained on. Pure numpy.

A softmax confidence answers "which of my labels is it most like?", never "is it like any
of them?": a keyboard or a sock gets a confident bin. Familiarity is the mean cosine
similarity of an image's embedding to its ``k`` nearest prototypes of the training set
(k-means centres per label, L2-normalised). The bundle computes it in its ONNX graph
(output ``familiarity``), so every runtime gets it with the logits.

The threshold is a quantile of the validation photos' own familiarity (``quantile`` = 0.02:
an image less familiar than 98 % of held-back training-like photos is unsure). It is chosen
without looking at any other place's photos, which is what lets it be honest there.
"""

from __future__ import annotations

import numpy as np

DEFAULT_K = 5


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 15) -> np.ndarray:
    """Spherical k-means centres (unit rows) of unit-norm rows ``x``."""
    rng = np.random.default_rng(seed)
    k = max(1, min(k, len(x)))
    centres = x[rng.choice(len(x), k, replace=False)]
    for _ in range(iters):
        assign = (x @ centres.T).argmax(1)
        for j in range(k):
            members = x[assign == j]
            if len(members):
                centres[j] = members.mean(0)
        centres = normalise(centres)
    return centres


def prototypes(emb: np.ndarray, y: np.ndarray, per_label: int = 16, seed: int = 0) -> np.ndarray:
    """Up to ``per_label`` k-means centres of each label's training embeddings, unit rows.

    About 30 KB per label for a 1280-d backbone: small beside the backbone, and enough to
    cover each label's several looks (a bottle standing, lying, crushed)."""
    x = normalise(emb)
    parts = [
        kmeans(x[y == c], max(1, min(per_label, int((y == c).sum()) // 4)), seed)
        for c in np.unique(y)
    ]
    return np.concatenate(parts).astype(np.float32)


def familiarity(emb: np.ndarray, protos: np.ndarray, k: int = DEFAULT_K) -> np.ndarray:
    """Mean cosine similarity of each row to its ``k`` most similar prototypes."""
    sims = normalise(emb) @ protos.T
    k = min(k, sims.shape[1])
    return np.sort(sims, axis=1)[:, -k:].mean(1)


def familiarity_threshold(val_familiarity: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of the validation photos' familiarity (0 when there are none)."""
    if len(val_familiarity) == 0 or quantile <= 0:
        return 0.0
    return float(np.quantile(val_familiarity, quantile))
