"""What bounds zero-shot accuracy on real/takeaway (issue 11, targets 1 and 2).

Three measurements on the same features as ``bench/real_world.py`` (the pipeline's
EfficientNet-Lite0 embeddings of every image of ../shared/data), each trained without
real/takeaway:

1. **The vocabulary's ceiling.** Each takeaway label is named by the training label it is
   made of (a paper bowl is ``paper``, a plastic fork ``plastic``); a model that names every
   takeaway photo that way, perfectly, gets this bin accuracy. Arithmetic on the counts.
2. **Open-set scores.** The shipped familiarity (k-NN to prototypes), a per-class
   Mahalanobis distance (shared covariance, shrunk) and the calibrated bin confidence, each
   with its threshold at the 2 % quantile of in-source validation: how much of takeaway each
   flags, how right the rest is, and the best decided accuracy any threshold reaches at a
   coverage of at least 10 %.
3. **ImageNet's vocabulary as a prior.** The backbone's own 1000-way classifier, with a
   hand-written map of 127 ImageNet classes to bins (below). The map was written after seeing
   which ImageNet classes takeaway photos fire (plate, tray, spatula, Petri dish), so its
   figures are an optimistic bound, not a blind result. The prior alone, and mixed with the
   head as ``(1 - w) log p_head + w log p_prior`` with ``w`` chosen leave-one-source-out on
   the training sources (extra, household, trashnet in turn), never on takeaway.

Usage: python bench/zero_shot_limits.py --work /tmp/wb/work   (needs torch: [train])
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import real_world as rw  # noqa: E402
from common import write_result  # noqa: E402

# Takeaway label -> the training label of the same material (what a perfect model trained
# without takeaway could call it).
MATERIAL = {
    "food": "organic",
    "tissue-paper": "paper",
    "paper-bowl": "paper",
    "paper-bowl-square": "paper",
    "chopsticks": "wood",
    "chopstick-covers": "paper",
    "brown-box": "cardboard",
    "plastic-cup": "plastic",
    "plastic-lid": "plastic",
    "plastic-cover": "plastic",
    "sauce-cup": "plastic",
    "plastic-utensil": "plastic",
    "sauce-packets": "trash",
}


# ImageNet class indices -> bin. Compost: foods, fungi, fruit, flowers, paper towel and
# toilet tissue, plate and soup bowl (food-soiled), matchstick, wooden spoon, crate (wood).
# Landfill: film and wrappers, plastic cutlery shapes, pens, hygiene items, textiles, shoes,
# electronics. Recycling: bottles and jars, glassware, cartons, paper goods, aerosol and
# lotion containers, Petri dish (rigid plastic), bucket, cans.
def _ids(text: str) -> list[int]:
    return [int(i) for i in text.split()]


IMAGENET_BINS = {
    "compost": [*range(924, 966), 969, *range(984, 999), 700, 999, 923, 809, 644, 910, 519],
    "landfill": _ids(
        "728 692 419 529 840 813 618 767 418 563 629 626 845 793 433 474 608 610 841 "
        "806 658 911 885 434 533 750 721 770 630 774 502 508 673 761 487 455"
    ),
    "recycling": _ids(
        "440 898 907 737 720 899 901 441 438 478 549 921 917 918 922 681 446 585 631 "
        "838 804 712 647 463 653 686"
    ),
}
QUANTILE = 0.02


def imagenet_logits(emb: np.ndarray) -> np.ndarray:
    """The backbone's ImageNet logits from its pre-logits embedding (its own classifier)."""
    from whichbin.training.backbones import create_backbone

    model, _, _ = create_backbone("efficientnet_lite0")
    w = model.classifier.weight.detach().numpy()
    b = model.classifier.bias.detach().numpy()
    return emb @ w.T + b


def prior_bins(logits: np.ndarray) -> np.ndarray:
    """Bin probabilities from the ImageNet classes the map knows (renormalised)."""
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    to_bin = np.zeros((logits.shape[1], len(rw.BINS)))
    for j, b in enumerate(rw.BINS):
        to_bin[IMAGENET_BINS[b], j] = 1.0
    mass = p @ to_bin
    return mass / np.maximum(mass.sum(1, keepdims=True), 1e-12)


def mahalanobis_score(train: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Minus the smallest per-class Mahalanobis distance (shared covariance, 10 % shrinkage)."""
    classes = np.unique(y)
    means = np.stack([train[y == c].mean(0) for c in classes])
    r = train - means[np.searchsorted(classes, y)]
    cov = r.T @ r / len(r)
    cov = 0.9 * cov + 0.1 * np.trace(cov) / len(cov) * np.eye(len(cov))
    prec = np.linalg.inv(cov)
    d = np.stack([(((x - m) @ prec) * (x - m)).sum(1) for m in means], 1)
    return -d.min(1)


def best_precision(score: np.ndarray, correct: np.ndarray, min_coverage: float = 0.1) -> float:
    """The best decided accuracy over thresholds on ``score`` keeping >= min_coverage."""
    order = np.argsort(-score)
    hits = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    start = max(int(np.ceil(min_coverage * len(order))) - 1, 0)
    return float(hits[start:].max())


HOLDS = ("takeaway", "extra", "household", "trashnet")


def head_bin_probs(data: dict, rules: Any, hold: str) -> dict[str, Any]:
    """The default recipe's head trained on every source but ``hold``: calibrated bin
    probabilities of ``hold``'s photos and of the in-source validation rows, and the
    familiarity of both."""
    from whichbin.evaluation.openset import familiarity
    from whichbin.inference import softmax
    from whichbin.training.heads import forward

    emb, labels, splits = data["emb"], data["labels"], data["splits"]
    base = data["groups"] != hold
    x = emb[~base]
    photos = [r for r, b in zip(data["rows"], base, strict=True) if b]
    recipe = rw.Recipe(data, rules, 0)
    model = recipe.fit(emb[base], labels[base], splits[base], photos=photos)
    l2b = rules.restricted_to(model["labels"])
    to_bin = np.array([[l2b[lab] == b for b in rw.BINS] for lab in model["labels"]], float)
    val = emb[base & (splits == "val")]

    def probs(e: np.ndarray) -> np.ndarray:
        return softmax(forward(model["layers"], e), model["temperature"]) @ to_bin

    return {
        "probs": probs(x),
        "val_probs": probs(val),
        "fam": familiarity(x, model["protos"]),
        "val_fam": familiarity(val, model["protos"]),
    }


def open_set(data: dict, rules: Any, hold: str, h: dict[str, Any]) -> dict[str, Any]:
    """Open-set scores on ``hold``, with ``h`` its ``head_bin_probs``."""
    emb, labels, splits, groups = data["emb"], data["labels"], data["splits"], data["groups"]
    l2b = rules.label_to_bin()
    base, held = groups != hold, groups == hold
    truth = np.array([rw.BINS.index(l2b[lab]) for lab in labels[held]])
    correct = h["probs"].argmax(1) == truth
    tr = base & (splits == "train")
    maha = mahalanobis_score(emb[tr], labels[tr], emb[held])
    maha_val = mahalanobis_score(emb[tr], labels[tr], emb[base & (splits == "val")])
    scores = {
        "familiarity": (h["fam"], h["val_fam"]),
        "mahalanobis": (maha, maha_val),
        "bin_confidence": (h["probs"].max(1), h["val_probs"].max(1)),
    }
    out: dict[str, Any] = {"bin_accuracy": float(correct.mean())}
    for name, (s, s_val) in scores.items():
        decided = s >= np.quantile(s_val, QUANTILE)
        out[name] = {
            "flagged": float(1 - decided.mean()),
            "decided_accuracy": float(correct[decided].mean()) if decided.any() else None,
            "best_decided_accuracy_at_10pct_coverage": best_precision(s, correct),
        }
    return out


def imagenet_prior(
    data: dict, rules: Any, logits: np.ndarray, heads: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The prior alone and mixed with each held-out source's head (``heads``)."""
    labels, groups = data["labels"], data["groups"]
    l2b = rules.label_to_bin()
    prior = prior_bins(logits)
    weights = [round(w, 1) for w in np.arange(0, 1.01, 0.1)]
    per_source: dict[str, dict[str, float]] = {}
    for hold in HOLDS:
        held = groups == hold
        truth = np.array([rw.BINS.index(l2b[lab]) for lab in labels[held]])
        p = heads[hold]["probs"]
        per_source[hold] = {
            str(w): float(
                np.mean(
                    ((1 - w) * np.log(p + 1e-6) + w * np.log(prior[held] + 1e-3)).argmax(1) == truth
                )
            )
            for w in weights
        }
    loso = {
        w: np.mean([per_source[s][str(w)] for s in ("extra", "household", "trashnet")])
        for w in weights
    }
    chosen = max(loso, key=lambda w: loso[w])
    return {
        "classes_mapped": {b: len(v) for b, v in IMAGENET_BINS.items()},
        "held_out_accuracy_by_weight": per_source,
        "chosen_weight_leave_one_source_out": chosen,
        "takeaway_at_chosen": per_source["takeaway"][str(chosen)],
        "takeaway_prior_alone": per_source["takeaway"]["1.0"],
        "takeaway_head_alone": per_source["takeaway"]["0.0"],
    }


def vocabulary_ceiling(data: dict, rules: Any) -> dict[str, Any]:
    l2b = rules.label_to_bin()
    labels = data["labels"][data["groups"] == "takeaway"]
    truth = np.array([l2b[lab] for lab in labels])
    named = np.array([l2b[MATERIAL[lab]] for lab in labels])
    return {
        "material_of": MATERIAL,
        "bin_accuracy": float(np.mean(named == truth)),
        "bin_recall": {b: float(np.mean(named[truth == b] == b)) for b in rw.BINS},
    }


def main() -> None:
    from whichbin.rules import load_rules

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/whichbin-bench-real/work"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rules = load_rules()
    data = rw.load(args.work, "efficientnet_lite0")
    heads = {hold: head_bin_probs(data, rules, hold) for hold in HOLDS}  # one head each
    write_result(
        "zero_shot_limits",
        {
            "held_out": "takeaway",
            "images": int((data["groups"] == "takeaway").sum()),
            "vocabulary_ceiling": vocabulary_ceiling(data, rules),
            "open_set": open_set(data, rules, "takeaway", heads["takeaway"]),
            "imagenet_prior": imagenet_prior(data, rules, imagenet_logits(data["emb"]), heads),
        },
    )


if __name__ == "__main__":
    main()
