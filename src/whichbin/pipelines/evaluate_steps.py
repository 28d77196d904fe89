"""The local pipeline's evaluation steps: the candidate, the approved model (incremental,
per image), plots and the HTML report.

Every bundle's logits on a test image are kept in a per-image cache keyed by (bundle
sha256, image sha256): the approved model then runs only on test images it has not seen,
and a version approved from this work directory needs no run at all (its logits were kept
when it was the candidate).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from whichbin.pipelines.cache import LogitsCache, cached_logits
from whichbin.rules import RulePack

logger = logging.getLogger(__name__)


def logits_cache(work_dir: Path) -> LogitsCache:
    """The per-image logits table, beside the embeddings in the work directory's cache."""
    return LogitsCache(Path(work_dir) / "cache" / "embeddings.sqlite")


def evaluate_embedded_step(
    out: Path,
    bundle: Path,
    bundle_sha: str,
    test: list,
    emb: np.ndarray,
    trained: dict,
    rules: RulePack,
    sources: list[str],
    cache: LogitsCache,
) -> dict[str, Any]:
    """A head-on-cached-embeddings candidate: metrics, plots; its logits kept per image."""
    from whichbin.evaluation.evaluate import embedded_logits, metrics_from_probs
    from whichbin.inference import softmax

    logits, parity = embedded_logits(
        bundle,
        [r.path for r in test],
        emb,
        trained["layers"],
        site=trained.get("site"),
        temperature=trained["temperature"],
    )
    cache.put_many(bundle_sha, dict(zip([r.sha256 for r in test], logits, strict=True)))
    m = metrics_from_probs(
        softmax(logits, trained["temperature"]),
        trained["meta"].labels,
        [r.label for r in test],
        rules,
        trained["threshold"],
        sources,
        familiar_rows(emb, trained),
    )
    m["parity"] = parity
    plots(out, m)
    return {"metrics": m}


def familiar_rows(emb: np.ndarray, trained: dict) -> np.ndarray | None:
    """Rows the bundle's open-set check lets through (None: the bundle has no such check)."""
    from whichbin.evaluation.openset import familiarity

    threshold = trained["meta"].rules.get("familiarity")
    if trained.get("protos") is None or threshold is None or not len(emb):
        return None
    return familiarity(emb, trained["protos"]) >= threshold


def evaluate_file_step(
    out: Path,
    bundle: Path,
    bundle_sha: str,
    test: list,
    rules: RulePack,
    threshold: float | None,
    sources: list[str],
    cache: LogitsCache,
    with_plots: bool = True,
) -> dict[str, Any]:
    """Any bundle run on the test images it has not seen yet (cached per image).

    ``computed`` in the result says how many images went through the model this time.
    """
    from whichbin.evaluation.evaluate import bundle_logits, metrics_from_probs
    from whichbin.inference import read_meta, softmax

    meta = read_meta(bundle)
    logits, computed = cached_logits(
        cache,
        bundle_sha,
        [r.sha256 for r in test],
        [r.path for r in test],
        lambda paths: bundle_logits(bundle, paths),
    )
    if not len(test):
        logits = np.zeros((0, len(meta.labels)), np.float32)
    m = metrics_from_probs(
        softmax(logits, meta.temperature),
        meta.labels,
        [r.label for r in test],
        rules,
        threshold,
        sources,
    )
    if with_plots:
        plots(out, m)
    return {"metrics": m, "computed": computed}


def approved_model_key(lineage: dict[str, Any], sha256: str) -> str:
    """Whose logits an approved version shares: the file it was registered from.

    Registries stamp the version id into the copy they keep (``source_sha256`` is the
    file before that); the stamp changes metadata only, never the graph or temperature,
    so the candidate's logits are the approved artifact's.
    """
    return str(lineage.get("source_sha256") or sha256)


def plots(out: Path, m: dict) -> None:
    from whichbin.evaluation.report import plot_confusion

    if "confusion" in m:
        plot_confusion(m["confusion"], m["labels"], out / "confusion.png", "Test split: labels")
    plot_confusion(m["bin_confusion"], m["bins"], out / "bin_confusion.png", "Test split: bins")


def write_training_report(
    eval_dir: Path, trained: dict, metrics: dict, gate: Any, lineage: dict, summary: dict
) -> Path:
    """The HTML report (figures, gate, metrics, per-source table, lineage) in ``report/``."""
    from whichbin.evaluation.report import write_report

    out = eval_dir / "report"
    out.mkdir(exist_ok=True)
    images = {}
    for name, src in (
        ("confusion matrix (labels)", eval_dir / "confusion.png"),
        ("confusion matrix (bins)", eval_dir / "bin_confusion.png"),
        ("reliability diagram (validation)", Path(trained["dir"]) / "reliability.png"),
        ("training curves", Path(trained["dir"]) / "curves.png"),
    ):
        if src.is_file():
            shutil.copy2(src, out / src.name)
            images[name] = src.name
    sections = {
        "gate": gate.status,
        "reasons": gate.reasons,
        "checks": gate.checks,
        **{k: v for k, v in summary.items() if k != "per_source"},
        "lineage": lineage,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return write_report(
        out, "whichbin training report", sections, images, per_source=summary.get("per_source")
    )
