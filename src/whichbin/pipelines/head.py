"""The head-only training step: targets (labels and bin-only photos), the numpy head with
warm starts, calibration, familiarity prototypes and the site memory of a site's corrections."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from whichbin.config import PipelineConfig
from whichbin.errors import DataError
from whichbin.pipelines.cache import StepCache
from whichbin.rules import RulePack
from whichbin.training.site_memory import SiteMemory, build_site_memory

logger = logging.getLogger(__name__)


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # emb, y, targets, split

# A targets row marks the labels a row allows: LABELLED for a labelled photo's one label,
# BIN_ONLY for every label of a bin-only photo's bin (which may be a single label).
LABELLED, BIN_ONLY = 1, 2


def bin_only_rows(targets: np.ndarray) -> np.ndarray:
    """Which rows of a targets matrix are bin-only photos (or their views)."""
    return np.asarray((targets == BIN_ONLY).any(1))


def _extra_rows(
    cfg: PipelineConfig,
    rows: list,
    sel: np.ndarray,
    backbone: Path,
    pre: Any,
    wid: str,
    compute: Any,
) -> Any:
    """``compute(paths, shas, encoder, cache, key)`` for the photos ``sel``, with the work
    dir's embedding cache and the backbone's encoder."""
    from whichbin.training.embeddings import EmbeddingCache, OnnxEncoder, embedding_key

    cache = EmbeddingCache(Path(cfg.work_dir) / "cache" / "embeddings.sqlite")
    try:
        enc = OnnxEncoder(backbone, pre, cfg.training.threads)
        paths, shas = [rows[i].path for i in sel], [rows[i].sha256 for i in sel]
        return compute(paths, shas, enc, cache, embedding_key(wid, pre))
    finally:
        cache.close()


def _append(arrays: Arrays, source: np.ndarray, emb: np.ndarray) -> Arrays:
    """More training rows: ``emb`` each standing for the row ``source`` names."""
    old_emb, y, targets, split = arrays
    return (
        np.concatenate([old_emb, emb.astype(old_emb.dtype)]),
        np.concatenate([y, y[source]]),
        np.concatenate([targets, targets[source]]),
        np.concatenate([split, np.full(len(source), "train")]),
    )


def with_site_views(
    cfg: PipelineConfig, rows: list, arrays: Arrays, backbone: Path, pre: Any, wid: str
) -> Arrays:
    """(emb, y, targets, split) with the fixed views of every bin-only training photo
    appended as more training rows (a site's few corrections, each seen seven ways)."""
    from whichbin.training.augment import VIEWS
    from whichbin.training.embeddings import compute_view_embeddings

    _, _, targets, split = arrays
    sel = np.where(bin_only_rows(targets) & (split == "train"))[0]
    if not len(sel):
        return arrays
    views = _extra_rows(cfg, rows, sel, backbone, pre, wid, compute_view_embeddings)
    return _append(arrays, np.repeat(sel, VIEWS), views)


def with_composites(
    cfg: PipelineConfig, rows: list, arrays: Arrays, backbone: Path, pre: Any, wid: str
) -> Arrays:
    """(emb, y, targets, split) with one more training row per labelled board photo (the
    object cut out and put on another surface: a counter, a table, wood, tiles), so the head
    does not learn "white board" as part of a label. Photos without a board add nothing."""
    from whichbin.training.embeddings import compute_composite_embeddings

    _, _, targets, split = arrays
    sel = np.where(~bin_only_rows(targets) & (split == "train"))[0]
    sel = sel[sel < len(rows)]  # rows appended after the photos (views) are not photos
    if not cfg.training.head_composites or not len(sel):
        return arrays
    comp, ok = _extra_rows(cfg, rows, sel, backbone, pre, wid, compute_composite_embeddings)
    return _append(arrays, sel[ok], comp) if ok.any() else arrays


def site_memory_for(
    arrays: Arrays,
    owner: np.ndarray,
    layers: list[tuple[np.ndarray, np.ndarray]],
    temperature: float,
    t: Any,
) -> SiteMemory | None:
    """The site memory of the bin-only training photos (training/site_memory.py), or None
    when there are none or it is off. ``owner`` names the photo each row is a view of."""
    from whichbin.inference import softmax
    from whichbin.training.heads import forward

    emb, _, targets, split = arrays
    only, train = bin_only_rows(targets), split == "train"
    sel = only & train
    if not t.site_memory or not sel.any():
        return None
    probs = softmax(forward(layers, emb[sel]), temperature)
    stock = emb[~only & train] if t.site_memory_domain else None
    return build_site_memory(
        emb[sel],
        probs,
        targets[sel].astype(bool),
        owner[sel],
        t.site_memory_weight,
        t.site_memory_k,
        t.site_memory_quantile,
        stock,
    )


def save_site_memory(d: Path, mem: SiteMemory) -> None:
    """Keep a site memory in a train step's directory."""
    arrays: dict[str, Any] = {"keys": mem.keys, "dists": mem.dists, "gate": mem.gate}
    arrays |= {"weight": mem.weight, "k": mem.k}
    if mem.domain is not None:
        arrays["domain"] = mem.domain
    np.savez(d / "site.npz", **arrays)


def load_site_memory(d: Path) -> SiteMemory | None:
    """The site memory a train step kept, or None."""
    if not (d / "site.npz").is_file():
        return None
    z = np.load(d / "site.npz")
    domain = z["domain"] if "domain" in z.files else None
    return SiteMemory(
        z["keys"], z["dists"], float(z["gate"]), float(z["weight"]), int(z["k"]), domain
    )


def load_head(step_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The head layers a train step saved."""
    head = np.load(step_dir / "head.npz")
    return [(head[f"w{i}"], head[f"b{i}"]) for i in range(len(head.files) // 2)]


def previous_head(steps: StepCache, family: str) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """The newest head trained in this work dir with the same labels, embeddings and
    settings (``family``), only the data differing; None when there is none."""
    done = [
        p
        for p in (steps.root / "train").glob("*/result.json")
        if json.loads(p.read_text()).get("family") == family
    ]
    if not done:
        return None
    newest = max(done, key=lambda p: p.stat().st_mtime).parent
    logger.info("head: warm start from %s", newest.name)
    return load_head(newest)


def head_targets(
    rows: list, labels: list[str], rules: RulePack
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class index, allowed-label mask, split) per row. A bin-only row (a folder named after
    a bin) allows every label of its bin; its class index is the first label of that bin (it
    only picks a class weight). It trains, or is tested at bin level (evaluation knows a bin
    name as its own bin), but never validates: calibration needs labels."""
    from whichbin.training.heads import bin_targets, label_targets

    index = {lab: i for i, lab in enumerate(labels)}
    l2b = rules.restricted_to(labels)
    targets = np.zeros((len(rows), len(labels)), np.int8)
    y = np.zeros(len(rows), int)
    split = np.array([r.split for r in rows], dtype=object)
    only = np.array([rules.is_bin_only(r.label) for r in rows], bool)
    if (~only).any():
        y[~only] = [index[r.label] for r in rows if not rules.is_bin_only(r.label)]
        targets[~only] = label_targets(y[~only], len(labels)) * LABELLED
    if only.any():
        bin_rows = [r.label for r in rows if rules.is_bin_only(r.label)]
        targets[only] = bin_targets(bin_rows, labels, l2b) * BIN_ONLY
        if not targets[only].any(1).all():
            missing = sorted(set(bin_rows) - set(l2b.values()))
            raise DataError(
                f"bin-only photos for {missing} but no label of that bin to learn: add "
                "labelled photos too (e.g. --data ../shared/data/trashnet)"
            )
        y[only] = targets[only].argmax(1)
        split[only & (split == "val")] = "none"
    return y, targets, split.astype(str)


@dataclass
class Calibration:
    """Temperature and unsure threshold fitted on the validation split, and what they give."""

    temperature: float
    threshold: float
    precision: float  # bin accuracy of the decided validation items
    coverage: float  # share of validation items decided
    m: dict[str, Any]  # validation metrics at that temperature
    bconf: np.ndarray  # top bin probability per validation item
    bcorrect: np.ndarray  # whether that bin is right


def calibrate_on_val(
    logits: np.ndarray, y: np.ndarray, labels: list[str], rules: RulePack, t: Any
) -> Calibration:
    """Temperature on validation logits, then the lowest unsure threshold whose decided
    validation items are ``t.target_coverage_precision`` correct (at bin level)."""
    from whichbin.evaluation.calibration import choose_threshold, fit_temperature
    from whichbin.evaluation.metrics import classification_metrics
    from whichbin.inference import softmax

    temp = fit_temperature(logits, y)
    probs = softmax(logits, temp)
    l2b = rules.restricted_to(labels)
    m = classification_metrics(y, probs, labels, l2b)
    bidx = {b: i for i, b in enumerate(m["bins"])}
    lab2b = np.array([bidx[l2b[lab]] for lab in labels])
    bprobs = np.zeros((len(probs), len(bidx)))
    for j in range(len(labels)):
        bprobs[:, lab2b[j]] += probs[:, j]
    bconf, bcorrect = bprobs.max(1), bprobs.argmax(1) == lab2b[y]
    thr, prec, cov = choose_threshold(bconf, bcorrect, t.target_coverage_precision)
    return Calibration(temp, thr, prec, cov, m, bconf, bcorrect)


def train_head_step(
    out: Path,
    emb: np.ndarray,
    y: np.ndarray,
    split: np.ndarray,
    labels: list[str],
    t: Any,
    rules: RulePack,
    targets: np.ndarray | None = None,
    init: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, Any]:
    from whichbin.evaluation.calibration import reliability
    from whichbin.evaluation.report import plot_curves, plot_reliability
    from whichbin.training.heads import forward, train_head

    tr, va = split == "train", split == "val"
    targets = np.eye(len(labels), dtype=np.int8)[y] if targets is None else targets
    # Rows whose mask is not one-hot are bin-only (a site's own photos and their views):
    # ``bin_only_weight`` each, at most as much in all as the labelled rows.
    only = bin_only_rows(targets)
    n_only = int((only & tr).sum())
    w = min(t.bin_only_weight, int((~only & tr).sum()) / max(n_only, 1))
    row_weight = np.where(only, w, 1.0)
    res = train_head(
        emb[tr],
        y[tr],
        len(labels),
        emb[va],
        y[va],
        hidden=256 if t.head == "mlp" else 0,
        epochs=t.warm_epochs if init else t.epochs,
        lr=t.lr,
        weight_decay=t.weight_decay,
        balance=t.balance,
        seed=t.seed,
        patience=15 if init else 50,
        targets=targets[tr].astype(bool),
        row_weight=row_weight[tr],
        init=init,
    )
    arrays: dict[str, Any] = {
        f"{k}{i}": a for i, (w, b) in enumerate(res.layers) for k, a in (("w", w), ("b", b))
    }
    np.savez(out / "head.npz", **arrays)
    fam_threshold = None
    if t.familiarity_prototypes:
        from whichbin.evaluation.openset import familiarity, familiarity_threshold, prototypes

        protos = prototypes(emb[tr], y[tr], t.familiarity_prototypes, t.seed)
        np.save(out / "protos.npy", protos)
        fam_threshold = familiarity_threshold(familiarity(emb[va], protos), t.familiarity_quantile)
    c = calibrate_on_val(forward(res.layers, emb[va]), y[va], labels, rules, t)
    temp, thr, prec, cov, m = c.temperature, c.threshold, c.precision, c.coverage, c.m
    rel = reliability(c.bconf, c.bcorrect)
    plot_reliability(rel, m["bin_ece"], out / "reliability.png")
    plot_curves(res.history, out / "curves.png")
    val = {
        "accuracy": m["accuracy"],
        "bin_accuracy": m["bin_accuracy"],
        "macro_f1": m["macro_f1"],
        "ece": m["ece"],
        "bin_ece": m["bin_ece"],
        "threshold": thr,
        "decided_accuracy": prec,
        "coverage": cov,
        "best_epoch": res.best_epoch,
    }
    logger.info(
        "head: val accuracy %.3f, bin accuracy %.3f, T=%.2f, threshold %.2f (coverage %.2f)",
        m["accuracy"],
        m["bin_accuracy"],
        temp,
        thr,
        cov,
    )
    return {
        "temperature": temp,
        "threshold": thr,
        "familiarity": fam_threshold,
        "val": val,
        "reliability": rel,
    }
