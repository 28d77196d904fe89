"""Real-world accuracy: a source held out of training, honest unsure, and a site learning fast.

For each held-out source of ../shared/data/real/ (takeaway, household) the default head-only
recipe (the pipeline's own ``train_head_step``: numpy head, temperature, unsure threshold and
familiarity prototypes chosen on in-source validation) is trained on every other source and
measured on all of the held-out one:

1. zero-shot bin accuracy and per-bin recall, over ``--seeds`` (head seeds), with a
   logistic-regression reference on the same features and splits, and the all-data model's
   in-source test-split bin accuracy;
2. unsure: the share decided (coverage) and how many decided items are right, with the
   thresholds the pipeline chose on in-source validation (never on the held-out source);
3. a site learning fast: K photos per bin of the held-out source (random, ``--draws``) added
   as bin-only photos (what joystick corrections give: a bin, no label), a head-only
   retrain in numpy (no torch), bin accuracy on the rest of that source and the retrain's
   wall time.

Usage: python bench/real_world.py --work /tmp/whichbin-bench-real/work
(a pipeline work dir: the first run imports ../shared/data and embeds every image once)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED, write_result  # noqa: E402

SOURCES = {
    "trashnet": SHARED / "trashnet",
    "extra": SHARED / "extra",
    "takeaway": SHARED / "real" / "takeaway",
    "household": SHARED / "real" / "household",
}
BINS = ("compost", "landfill", "recycling")


def load(work: Path, backbone: str) -> dict[str, Any]:
    """Every image of ../shared/data through the pipeline's prepare and embedding steps."""
    from whichbin.config import PipelineConfig
    from whichbin.pipelines.cache import StepCache
    from whichbin.pipelines.train import backbone_step, embed_rows
    from whichbin.processing.prepare import prepare_dataset

    cfg = PipelineConfig(work_dir=str(work), training={"backbone": backbone})
    prepared = prepare_dataset(list(SOURCES.values()), work / "dataset", cfg.data)
    source_of = {}
    for line in (work / "dataset" / "samples.jsonl").read_text().splitlines():
        rec = json.loads(line)
        source_of[rec["sha256"]] = rec["source"]

    def group(sha: str) -> str:
        src = source_of.get(sha, "")
        return next((g for g, p in SOURCES.items() if src.startswith(str(p) + "/")), "?")

    rows = prepared.rows
    bb, pre, wid = backbone_step(cfg, StepCache(work / "steps"))
    emb, _ = embed_rows(cfg, rows, bb, pre, wid, progress=True)
    return {
        "cfg": cfg,
        "rows": rows,
        "paths": [r.path for r in rows],
        "backbone": (bb, pre),
        "wid": wid,
        "emb": emb.astype(np.float32),
        "labels": np.array([r.label for r in rows]),
        "splits": np.array([r.split for r in rows]),
        "groups": np.array([group(r.sha256) for r in rows]),
    }


class Recipe:
    """The pipeline's head recipe on chosen rows: returns what a bundle would decide."""

    def __init__(self, data: dict, rules: Any, seed: int) -> None:
        self.data = data
        self.t = data["cfg"].training.model_copy(update={"seed": seed})
        self.rules = rules

    def fit(
        self,
        emb: np.ndarray,
        labels: np.ndarray,
        splits: np.ndarray,
        init: list | None = None,
        owner: np.ndarray | None = None,
        photos: list | None = None,
    ) -> dict[str, Any]:
        """Train as the pipeline does. ``photos`` are the manifest rows of the first rows
        (their composites are added, as the pipeline adds them); ``owner`` names the photo
        each row is a view of (bin-only rows become the site memory)."""
        from whichbin.pipelines.head import (
            head_targets,
            load_head,
            site_memory_for,
            train_head_step,
            with_composites,
        )

        class Row:
            def __init__(self, label: str, split: str) -> None:
                self.label, self.split = label, split

        rows = [Row(lab, s) for lab, s in zip(labels, splits, strict=True)]
        model_labels = self.rules.model_labels(sorted(set(labels)))
        arrays = (emb, *head_targets(rows, model_labels, self.rules))
        if photos is not None:
            cfg = self.data["cfg"].model_copy(update={"training": self.t})
            bb, pre = self.data["backbone"]
            arrays = with_composites(cfg, photos, arrays, bb, pre, self.data["wid"])
        emb, y, targets, split = arrays
        owner = np.arange(len(emb)) if owner is None else owner
        owner = np.concatenate([owner, len(owner) + np.arange(len(emb) - len(owner))])
        with tempfile.TemporaryDirectory() as d:
            res = train_head_step(
                Path(d), emb, y, split, model_labels, self.t, self.rules, targets, init
            )
            layers = load_head(Path(d))
            protos_file = Path(d) / "protos.npy"
            protos = np.load(protos_file) if protos_file.exists() else None
        site = site_memory_for((emb, y, targets, split), owner, layers, res["temperature"], self.t)
        return {**res, "layers": layers, "protos": protos, "labels": model_labels, "site": site}

    def decide(self, model: dict[str, Any], emb: np.ndarray) -> dict[str, np.ndarray]:
        from whichbin.evaluation.openset import familiarity
        from whichbin.inference import softmax
        from whichbin.training.heads import forward
        from whichbin.training.site_memory import mixed_probs

        probs = softmax(forward(model["layers"], emb), model["temperature"])
        if model["site"] is not None:
            probs = mixed_probs(probs, model["site"], emb)
        l2b = self.rules.restricted_to(model["labels"])
        to_bin = np.array([[l2b[lab] == b for b in BINS] for lab in model["labels"]], float)
        bprobs = probs @ to_bin
        decided = bprobs.max(1) >= model["threshold"]
        if model["protos"] is not None and model["familiarity"] is not None:
            decided &= familiarity(emb, model["protos"]) >= model["familiarity"]
        return {"bin": np.array(BINS)[bprobs.argmax(1)], "decided": decided}


def bin_scores(pred: np.ndarray, truth: np.ndarray, decided: np.ndarray | None = None) -> dict:
    """Bin accuracy, per-bin recall, and coverage / decided accuracy."""
    out: dict[str, Any] = {
        "n": len(truth),
        "bin_accuracy": float(np.mean(pred == truth)),
        "bin_recall": {
            b: float(np.mean(pred[truth == b] == b)) for b in BINS if (truth == b).any()
        },
    }
    if decided is not None:
        out["coverage"] = float(decided.mean())
        out["decided_accuracy"] = (
            float(np.mean(pred[decided] == truth[decided])) if decided.any() else None
        )
    return out


def logreg_reference(
    emb: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray, l2b: dict
) -> np.ndarray:
    """sklearn logistic regression on the same features: predicted bins of ``test`` rows.
    Bin-only rows are labelled with their bin name (it has no other way to take them)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(emb[train])
    lr = LogisticRegression(max_iter=300, C=0.5).fit(sc.transform(emb[train]), labels[train])
    pred = lr.predict(sc.transform(emb[test]))
    return np.array([l2b.get(p, p) for p in pred])


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread of each figure over seeds or draws, plus the runs themselves."""
    out: dict[str, Any] = {"runs": runs}
    for key in (
        "bin_accuracy",
        "coverage",
        "decided_accuracy",
        "seconds",
        "other_sources_test_bin_accuracy",
    ):
        vals = [r[key] for r in runs if r.get(key) is not None]
        if vals:
            out[key] = mean_std(vals)
    for b in BINS:
        vals = [r["bin_recall"][b] for r in runs if b in r.get("bin_recall", {})]
        if vals:
            out.setdefault("bin_recall", {})[b] = mean_std(vals)
    return out


def held_out(data: dict, rules: Any, hold: str, seeds: list[int], ks: list[int], draws: int):
    """Targets 1-3 for one held-out source."""
    from whichbin.training.augment import VIEWS, fixed_views
    from whichbin.training.embeddings import OnnxEncoder, load_rgb

    emb, labels, splits, groups = data["emb"], data["labels"], data["splits"], data["groups"]
    l2b = rules.label_to_bin()
    base = groups != hold
    held = np.where(~base)[0]
    photos = [r for r, b in zip(data["rows"], base, strict=True) if b]
    truth = np.array([l2b[lab] for lab in labels[held]])
    zero, ref = [], []
    for seed in seeds:
        recipe = Recipe(data, rules, seed)
        model = recipe.fit(emb[base], labels[base], splits[base], photos=photos)
        d = recipe.decide(model, emb[held])
        zero.append({"seed": seed, **bin_scores(d["bin"], truth, d["decided"])})
        logging.info("%s zero-shot seed %d: %s", hold, seed, zero[-1])
    tr = np.where(base & (splits != "test"))[0]
    ref.append(bin_scores(logreg_reference(emb, labels, tr, held, l2b), truth))
    encoder = OnnxEncoder(*data["backbone"], data["cfg"].training.threads)
    # The site's current model: the zero-shot one of the first seed.
    base_model = Recipe(data, rules, seeds[0]).fit(
        emb[base], labels[base], splits[base], photos=photos
    )
    stock_test = np.where(base & (splits == "test"))[0]
    stock_truth = np.array([l2b[lab] for lab in labels[stock_test]])
    few = []
    for k in ks:
        runs, ref_runs = [], []
        for draw in range(draws):
            rng = np.random.default_rng(draw)
            shots = np.concatenate(
                [rng.choice(held[truth == b], k, replace=False) for b in BINS if (truth == b).any()]
            )
            rest = np.setdiff1d(held, shots)
            rest_truth = np.array([l2b[lab] for lab in labels[rest]])
            # What the joystick gives: the bin, filed as a bin-only photo. The update is
            # what `pipeline run` does with them: their six fixed views embedded, and the
            # head warm-started from the site's current one (timed together).
            t0 = time.perf_counter()
            views = np.concatenate(
                [encoder.encode(fixed_views(load_rgb(data["paths"][i]))) for i in shots]
            )
            shot_labels = np.array([l2b[lab] for lab in labels[shots]])
            all_shots = np.concatenate([shot_labels, np.repeat(shot_labels, VIEWS)])
            x = np.concatenate([emb[base], emb[shots], views])
            lab = np.concatenate([labels[base], all_shots])
            spl = np.concatenate([splits[base], np.full(len(all_shots), "train")])
            recipe = Recipe(data, rules, draw)
            owner = np.concatenate(
                [
                    np.arange(base.sum()),
                    base.sum() + np.arange(len(shots)),
                    base.sum() + np.repeat(np.arange(len(shots)), VIEWS),
                ]
            )
            model = recipe.fit(x, lab, spl, init=base_model["layers"], owner=owner, photos=photos)
            seconds = time.perf_counter() - t0
            d = recipe.decide(model, emb[rest])
            scores = bin_scores(d["bin"], rest_truth, d["decided"])
            # What the site's corrections cost on everyone else's photos.
            stock = recipe.decide(model, emb[stock_test])["bin"]
            scores["other_sources_test_bin_accuracy"] = float(np.mean(stock == stock_truth))
            runs.append({"draw": draw, "seconds": seconds, **scores})
            all_emb = np.concatenate([emb, emb[shots]])
            all_lab = np.concatenate([labels, shot_labels])
            train_idx = np.concatenate([tr, len(emb) + np.arange(len(shots))])
            ref_runs.append(
                bin_scores(logreg_reference(all_emb, all_lab, train_idx, rest, l2b), rest_truth)
            )
        few.append(
            {
                "k_per_bin": k,
                "photos": int(len(shots)),
                **summarise(runs),
                "reference_logreg": summarise(ref_runs),
            }
        )
        logging.info("%s K=%d: %s", hold, k, {kk: few[-1][kk] for kk in ("bin_accuracy",)})
    return {
        "held_out": hold,
        "images": len(held),
        "bins": {b: int((truth == b).sum()) for b in BINS},
        "zero_shot": summarise(zero),
        "zero_shot_reference_logreg": ref[0],
        "few_shot": few,
    }


def main() -> None:
    from whichbin.rules import load_rules

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/whichbin-bench-real/work"))
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--ks", default="5,10,20")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--holdout", default="takeaway,household")
    ap.add_argument("--composites", action="store_true", help="training.head_composites on")
    ap.add_argument("--name", default="real_world")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rules = load_rules()
    data = load(args.work, args.backbone)
    if args.composites:
        t = data["cfg"].training.model_copy(update={"head_composites": True})
        data["cfg"] = data["cfg"].model_copy(update={"training": t})
    seeds = [int(s) for s in args.seeds.split(",")]
    ks = [int(k) for k in args.ks.split(",") if k]

    # In-source: the all-data model on the all-data test split.
    in_source = []
    labels, splits = data["labels"], data["splits"]
    l2b = rules.label_to_bin()
    test = splits == "test"
    for seed in seeds:
        recipe = Recipe(data, rules, seed)
        model = recipe.fit(
            data["emb"][~test],
            labels[~test],
            splits[~test],
            photos=[r for r, t in zip(data["rows"], test, strict=True) if not t],
        )
        d = recipe.decide(model, data["emb"][test])
        truth = np.array([l2b[lab] for lab in labels[test]])
        in_source.append({"seed": seed, **bin_scores(d["bin"], truth, d["decided"])})
    results = [
        held_out(data, rules, hold, seeds, ks, args.draws) for hold in args.holdout.split(",")
    ]
    write_result(
        args.name,
        {
            "backbone": args.backbone,
            "recipe": "head-only (pipeline train_head_step: numpy head, temperature, unsure "
            "threshold and familiarity prototypes chosen on in-source validation)",
            "images": {g: int((data["groups"] == g).sum()) for g in SOURCES},
            "in_source_test": summarise(in_source),
            "held_out": results,
        },
    )


if __name__ == "__main__":
    main()
