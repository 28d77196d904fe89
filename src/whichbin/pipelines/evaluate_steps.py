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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from whichbin.pipelines.cache import LogitsCache, StepCache, StepOutcome, cached_logits
from whichbin.rules import RulePack

if TYPE_CHECKING:
    from whichbin.evaluation.gate import GateResult
    from whichbin.pipelines.train import HeadModel, TrainedModel

logger = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """A bundle's metrics on the test split.

    ``computed``: test images that went through the bundle file this time (None when the
    metrics came from cached embeddings); ``dir``: the step's directory (plots, report).
    """

    metrics: dict[str, Any]
    dir: Path
    computed: int | None = None

    def to_json(self) -> dict[str, Any]:
        """What the step cache keeps in result.json."""
        out: dict[str, Any] = {"metrics": self.metrics}
        if self.computed is not None:
            out["computed"] = self.computed
        return out

    @classmethod
    def from_step(cls, outcome: StepOutcome) -> Evaluation:
        r = outcome.result
        return cls(r["metrics"], outcome.dir, r.get("computed"))


def run_evaluation(
    steps: StepCache, name: str, parts: Any, fn: Callable[[Path], Evaluation]
) -> Evaluation:
    """``fn`` as a cached step: run once per key, loaded from its result.json after."""
    return Evaluation.from_step(steps.run(name, parts, lambda d: fn(d).to_json()))


def logits_cache(work_dir: Path) -> LogitsCache:
    """The per-image logits table, beside the embeddings in the work directory's cache."""
    return LogitsCache(Path(work_dir) / "cache" / "embeddings.sqlite")


def evaluate_embedded_step(
    out: Path,
    bundle: Path,
    bundle_sha: str,
    test: list,
    emb: np.ndarray,
    trained: HeadModel,
    rules: RulePack,
    sources: list[str],
    cache: LogitsCache,
) -> Evaluation:
    """A head-on-cached-embeddings candidate: metrics, plots; its logits kept per image."""
    from whichbin.evaluation.evaluate import embedded_logits, metrics_from_probs
    from whichbin.inference import softmax

    logits, parity = embedded_logits(
        bundle,
        [r.path for r in test],
        emb,
        trained.layers,
        site=trained.site,
        temperature=trained.temperature,
    )
    cache.put_many(bundle_sha, dict(zip([r.sha256 for r in test], logits, strict=True)))
    m = metrics_from_probs(
        softmax(logits, trained.temperature),
        trained.meta.labels,
        [r.label for r in test],
        rules,
        trained.threshold,
        sources,
        familiar_rows(emb, trained),
    )
    m["parity"] = parity
    plots(out, m)
    return Evaluation(m, out)


def familiar_rows(emb: np.ndarray, trained: HeadModel) -> np.ndarray | None:
    """Rows the bundle's open-set check lets through (None: the bundle has no such check)."""
    from whichbin.evaluation.openset import familiarity

    threshold = trained.meta.rules.get("familiarity")
    if trained.protos is None or threshold is None or not len(emb):
        return None
    return familiarity(emb, trained.protos) >= threshold


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
) -> Evaluation:
    """Any bundle run on the test images it has not seen yet (cached per image)."""
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
    return Evaluation(m, out, computed)


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
    eval_dir: Path,
    trained: TrainedModel,
    metrics: dict,
    gate: GateResult,
    lineage: dict,
    summary: dict,
) -> Path:
    """The HTML report (figures, gate, metrics, per-source table, lineage) in ``report/``."""
    from whichbin.evaluation.report import write_report

    out = eval_dir / "report"
    out.mkdir(exist_ok=True)
    images = {}
    for name, src in (
        ("confusion matrix (labels)", eval_dir / "confusion.png"),
        ("confusion matrix (bins)", eval_dir / "bin_confusion.png"),
        ("reliability diagram (validation)", trained.dir / "reliability.png"),
        ("training curves", trained.dir / "curves.png"),
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
