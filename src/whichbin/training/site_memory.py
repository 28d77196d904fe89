"""A site's memory of its own corrected photos: the next item like one a person corrected
gets that correction's bin, at once. Pure numpy; export.py writes the same sums into the
bundle's graph.

The memory holds each bin-only training photo (and its fixed views) as a unit embedding
with a label distribution: the head's own probabilities restricted to the photo's bin (a
correction says "compost", the head says which compost label it looks like). An image's
memory answer is the mean distribution of its ``k`` most similar entries; the bundle's
probabilities are ``(1 - g) * head + g * memory`` with ``g = weight * site`` when the image
is at least ``gate`` similar to its nearest entry, else 0, so items unlike every correction
keep the head's answer. ``gate`` is a quantile of the corrections' own leave-one-out
nearest-neighbour similarity: chosen on the site's photos alone.

``site`` is how much the image looks like the site's own photos rather than the stock
training photos: a logistic regression on unit embeddings, corrections against stock
(classes weighted equally), fitted when the memory is built. A stock-like item near a
correction (a clean bottle beside a corrected tray) keeps the head's answer, so the memory
may speak louder where it does speak; without stock photos ``site`` is 1.

The graph's ``logits`` output is ``T * log(mixed probabilities)``, so every runtime's
``softmax(logits / T)`` is the mixture and nothing downstream changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from whichbin.evaluation.openset import normalise


@dataclass(frozen=True)
class SiteMemory:
    keys: np.ndarray  # [M, D] unit rows
    dists: np.ndarray  # [M, labels], rows sum to 1
    gate: float
    weight: float
    k: int
    domain: np.ndarray | None = None  # [D + 1]: site-vs-stock weights, bias last

    def as_dict(self) -> dict[str, float | int]:
        return {
            "entries": len(self.keys),
            "gate": self.gate,
            "weight": self.weight,
            "k": self.k,
            "domain_gate": int(self.domain is not None),
        }

    def site_likeness(self, emb: np.ndarray) -> np.ndarray:
        """How much each image looks like the site's photos rather than stock [N]."""
        if self.domain is None:
            return np.ones(len(emb), np.float32)
        return _sigmoid(normalise(emb) @ self.domain[:-1] + self.domain[-1]).astype(np.float32)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def fit_domain(
    site: np.ndarray, stock: np.ndarray, l2: float = 1e-3, steps: int = 300, seed: int = 0
) -> np.ndarray:
    """Logistic regression, site photos (1) against stock photos (0), on unit embeddings,
    the two classes weighted equally; full-batch Adam. Returns weights with the bias last.
    ``stock`` is subsampled to at most 4,000 rows (seeded) to keep an update fast."""
    rng = np.random.default_rng(seed)
    if len(stock) > 4000:
        stock = stock[rng.choice(len(stock), 4000, replace=False)]
    x = np.concatenate([normalise(site), normalise(stock)]).astype(np.float32)
    x = np.concatenate([x, np.ones((len(x), 1), np.float32)], 1)
    y = np.r_[np.ones(len(site)), np.zeros(len(stock))].astype(np.float32)
    sw = np.where(y == 1, 0.5 / len(site), 0.5 / len(stock)).astype(np.float32)
    w = np.zeros(x.shape[1], np.float32)
    m, v = np.zeros_like(w), np.zeros_like(w)
    lr, b1, b2 = 0.1, 0.9, 0.999
    decay = np.r_[np.full(x.shape[1] - 1, l2), 0.0].astype(np.float32)
    for i in range(1, steps + 1):
        p = _sigmoid(x @ w)
        grad = x.T @ (sw * (p - y)) + decay * w
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        w -= lr * (m / (1 - b1**i)) / (np.sqrt(v / (1 - b2**i)) + 1e-8)
    return w


def build_site_memory(
    emb: np.ndarray,
    head_probs: np.ndarray,
    allowed: np.ndarray,
    owner: np.ndarray,
    weight: float,
    k: int,
    quantile: float,
    stock: np.ndarray | None = None,
) -> SiteMemory:
    """Memory from bin-only photos.

    Args:
        emb: Embeddings of the photos and their views [M, D].
        head_probs: The trained head's calibrated probabilities on them [M, labels].
        allowed: Each entry's bin as a label mask [M, labels] (the labels of its bin).
        owner: Which photo each entry is (a photo and its views share one owner).
        weight: How much the memory's answer counts when it speaks.
        k: Neighbours averaged.
        quantile: ``gate`` is this quantile of each photo's similarity to the nearest entry
            of another photo.
        stock: Embeddings of stock (labelled) training photos: when given, the memory
            speaks in proportion to how site-like an image is (``fit_domain``).
    """
    keys = normalise(emb)
    dists = head_probs * allowed
    dists = dists / np.maximum(dists.sum(1, keepdims=True), 1e-12)
    sims = keys @ keys.T
    sims[owner[:, None] == owner[None, :]] = -1.0
    nearest = sims.max(1)
    gate = float(np.quantile(nearest, quantile)) if len(set(owner.tolist())) > 1 else 1.0
    domain = fit_domain(emb, stock) if stock is not None and len(stock) else None
    return SiteMemory(keys.astype(np.float32), dists.astype(np.float32), gate, weight, k, domain)


def mixed_probs(probs: np.ndarray, mem: SiteMemory, emb: np.ndarray) -> np.ndarray:
    """The head's probabilities mixed with the memory's answer where the memory speaks."""
    sims = normalise(emb) @ mem.keys.T
    k = min(mem.k, len(mem.keys))
    top = np.argsort(-sims, axis=1)[:, :k]
    answer = mem.dists[top].mean(1)
    g = (sims.max(1, keepdims=True) >= mem.gate) * mem.weight * mem.site_likeness(emb)[:, None]
    return probs + g * (answer - probs)


def mixed_logits(
    logits: np.ndarray, temperature: float, mem: SiteMemory | None, emb: np.ndarray
) -> np.ndarray:
    """What the bundle's ``logits`` output is: the head's logits, or with a memory
    ``T * log(mixed probabilities)``."""
    if mem is None:
        return logits
    z = logits / temperature
    z = z - z.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return (temperature * np.log(mixed_probs(p, mem, emb) + 1e-12)).astype(np.float32)
