"""A site's memory of its own corrected photos: the next item like one a person corrected
gets that correction's bin, at once. Pure numpy; export.py writes the same sums into the
bundle's graph.

The memory holds each bin-only training photo (and its fixed views) as a unit embedding
with a label distribution: the head's own probabilities restricted to the photo's bin (a
correction says "compost", the head says which compost label it looks like). An image's
memory answer is the mean distribution of its ``k`` most similar entries; the bundle's
probabilities are ``(1 - g) * head + g * memory`` with ``g = weight`` when the image is at
least ``gate`` similar to its nearest entry, else 0, so items unlike every correction keep
the head's answer. ``gate`` is a quantile of the corrections' own leave-one-out
nearest-neighbour similarity: chosen on the site's photos alone.

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

    def as_dict(self) -> dict[str, float | int]:
        return {"entries": len(self.keys), "gate": self.gate, "weight": self.weight, "k": self.k}


def build_site_memory(
    emb: np.ndarray,
    head_probs: np.ndarray,
    allowed: np.ndarray,
    owner: np.ndarray,
    weight: float = 0.3,
    k: int = 3,
    quantile: float = 0.1,
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
    """
    keys = normalise(emb)
    dists = head_probs * allowed
    dists = dists / np.maximum(dists.sum(1, keepdims=True), 1e-12)
    sims = keys @ keys.T
    sims[owner[:, None] == owner[None, :]] = -1.0
    nearest = sims.max(1)
    gate = float(np.quantile(nearest, quantile)) if len(set(owner.tolist())) > 1 else 1.0
    return SiteMemory(keys.astype(np.float32), dists.astype(np.float32), gate, weight, k)


def mixed_probs(probs: np.ndarray, mem: SiteMemory, emb: np.ndarray) -> np.ndarray:
    """The head's probabilities mixed with the memory's answer where the memory speaks."""
    sims = normalise(emb) @ mem.keys.T
    k = min(mem.k, len(mem.keys))
    top = np.argsort(-sims, axis=1)[:, :k]
    answer = mem.dists[top].mean(1)
    g = (sims.max(1, keepdims=True) >= mem.gate) * mem.weight
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
