"""The local pipeline: processing → embeddings → head → bundle → evaluation → gate →
registration, each step cached by the hash of its inputs."""

from __future__ import annotations

import logging
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import whichbin
from whichbin.config import PipelineConfig, config_hash
from whichbin.errors import DataError
from whichbin.inference import sha256_file
from whichbin.pipelines.cache import LogitsCache, StepCache, hash_key
from whichbin.pipelines.evaluate_steps import (
    Evaluation,
    approved_model_key,
    evaluate_embedded_step,
    evaluate_file_step,
    logits_cache,
    run_evaluation,
    write_training_report,
)
from whichbin.pipelines.train import HeadModel
from whichbin.rules import RulePack, load_rules

if TYPE_CHECKING:
    from whichbin.evaluation.gate import GateResult
    from whichbin.processing.prepare import PreparedDataset
    from whichbin.registry import ModelVersion, Registry

logger = logging.getLogger(__name__)


@dataclass
class Candidate:
    """A bundle and its evaluation on the test split."""

    bundle: Path
    sha256: str
    evaluation: Evaluation

    @property
    def metrics(self) -> dict[str, Any]:
        return self.evaluation.metrics


@dataclass
class PipelineResult:
    """What a run produced. ``gate``, ``reasons`` and ``status`` are the registry's record of
    ``version``; ``gate_this_run`` is set when this run's gate disagrees with that record
    (an already registered bundle re-run under another gate config)."""

    version: str | None
    gate: str
    reasons: list[str]
    metrics: dict[str, Any]
    status: str
    bundle: Path
    report: Path | None
    timings: dict[str, dict[str, Any]] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    gate_this_run: dict[str, Any] | None = None
    checks: dict[str, Any] = field(default_factory=dict)  # this run's gate, check by check

    @property
    def passed(self) -> bool:
        return self.gate == "passed"

    def to_json(self) -> dict[str, Any]:
        """SPEC output of ``pipeline run --json`` (plus timings and lineage)."""
        out = {
            "version": self.version,
            "gate": self.gate,
            "reasons": self.reasons,
            "metrics": self.metrics,
            "status": self.status,
            "bundle": str(self.bundle),
            "report": str(self.report) if self.report else None,
            "timings": self.timings,
            "lineage": self.lineage,
        }
        if self.gate_this_run is not None:
            out["gate_this_run"] = self.gate_this_run
        return out


def code_version() -> str:
    """Package version plus the git commit when run from a checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{whichbin.__version__}+{sha}" if sha else whichbin.__version__


def summary_metrics(m: dict[str, Any]) -> dict[str, Any]:
    """The metrics worth storing in the registry and the bundle (no big matrices)."""
    keep = (
        "n",
        "accuracy",
        "macro_f1",
        "bin_accuracy",
        "bin_recall",
        "label_recall",
        "ece",
        "bin_ece",
        "threshold",
        "coverage",
        "decided_accuracy",
        "temperature",
        "int8",
        "per_source",
    )
    return {k: m[k] for k in keep if k in m}


def prepare_step(
    cfg: PipelineConfig, sources: list[Path], steps: StepCache
) -> tuple[PreparedDataset, RulePack]:
    """Import, check, dedupe and split ``sources`` into the work dir's dataset (the first
    step, locally and in SageMaker), and check it can be trained on."""
    from whichbin.processing.prepare import prepare_dataset

    if not sources:
        raise DataError(
            "no data: pass --data DIR (an image-folder tree, .lst or .csv) or set data.sources"
        )
    rules = load_rules(Path(cfg.rules) if cfg.rules else None)
    t0 = time.perf_counter()
    prepared = prepare_dataset([Path(s) for s in sources], Path(cfg.work_dir) / "dataset", cfg.data)
    steps.record("prepare", time.perf_counter() - t0, {"images": len(prepared.rows)})
    rules.restricted_to(list(prepared.labels))  # every label needs a bin: fail early
    for split in ("train", "val", "test"):
        if not any(r.split == split for r in prepared.rows):
            raise DataError(f"{prepared.root}: the {split} split is empty; add images")
    return prepared, rules


def run_pipeline(
    cfg: PipelineConfig,
    sources: list[Path],
    registry_uri: str | Registry | None = None,
    register: bool = True,
    progress: bool = True,
) -> PipelineResult:
    """Run every step; returns the registered candidate and its gate result.

    ``registry_uri`` may also be a Registry object (the SageMaker evaluate step passes the
    ``sagemaker://`` registry staging its candidate for the pipeline's registration step).
    """
    from whichbin.registry import open_registry
    from whichbin.training.extra import require_train_extra

    if sources:
        require_train_extra(cfg.training)  # before minutes of data preparation
    work = Path(cfg.work_dir)
    steps = StepCache(work / "steps")
    prepared, rules = prepare_step(cfg, sources, steps)
    labels = list(prepared.labels)
    rows = prepared.rows

    from whichbin.pipelines.train import train_and_export

    trained = train_and_export(cfg, prepared, labels, rules, steps, progress)

    test = [r for r in rows if r.split == "test"]
    test_sources = [prepared.source_of(r) for r in test]
    eval_key = {
        "manifest": prepared.manifest_hash,
        "rules": rules.model_dump(),
        "sources": hash_key(test_sources),
        "v": 3,
    }
    logits = logits_cache(work)
    try:
        bundle, bundle_sha = trained.bundle, sha256_file(trained.bundle)

        def evaluate(d: Path) -> Evaluation:
            if isinstance(trained, HeadModel):
                emb = trained.embeddings[np.array([r.split == "test" for r in rows])]
                return evaluate_embedded_step(
                    d, bundle, bundle_sha, test, emb, trained, rules, test_sources, logits
                )
            # a new backbone: every test image goes through the file
            thr = trained.threshold
            return evaluate_file_step(d, bundle, bundle_sha, test, rules, thr, test_sources, logits)

        evaluation = run_evaluation(steps, "evaluate", {"bundle": bundle_sha, **eval_key}, evaluate)
        cand = Candidate(bundle, bundle_sha, evaluation)
        if cfg.training.int8 and isinstance(trained, HeadModel) and _float_backbone(trained):
            cand = _maybe_int8(
                cfg, steps, prepared, rules, trained, cand, (eval_key, test_sources, logits)
            )
        cand.metrics["temperature"] = trained.temperature

        if registry_uri is not None and not isinstance(registry_uri, str):
            registry: Registry | None = registry_uri
        elif register:
            registry = open_registry(registry_uri or cfg.registry.uri)
        else:  # evaluate only: still compared with the approved model, nothing created
            registry = _existing_registry(registry_uri or cfg.registry.uri)
        approved = registry.latest_approved(cfg.registry.model_name) if registry else None
        approved_metrics = None
        if registry is not None and approved is not None:
            # Per image: only test images this model has not seen go through it.
            model_key = approved_model_key(approved.lineage, approved.sha256)
            artifact = registry.artifact_path(approved.id)
            approved_metrics = run_evaluation(
                steps,
                "evaluate_approved",
                {"model": model_key, **eval_key},
                lambda d: evaluate_file_step(
                    d, artifact, model_key, test, rules, None, test_sources, logits, False
                ),
            ).metrics
    finally:
        logits.close()

    t0 = time.perf_counter()
    from whichbin.evaluation.gate import evaluate_gate

    metrics = cand.metrics
    gate = evaluate_gate(metrics, cfg.gate, approved_metrics, approved.id if approved else None)
    lineage = {
        "manifest_hash": prepared.manifest_hash,
        "config_hash": config_hash(cfg),
        "code_version": code_version(),
        # Every source the dataset holds, this run's --data and earlier runs' alike.
        "sources": prepared.sources or [str(s) for s in sources],
        "source_images": dict(Counter(prepared.source_of(r) for r in rows)),
        "backbone": cfg.training.backbone,
        "images": {s: sum(r.split == s for r in rows) for s in ("train", "val", "test")},
        "compared_with": approved.id if approved else None,
        "candidate_sha256": cand.sha256,  # before the registry stamps the version id in
    }
    summary = summary_metrics(metrics)
    report = write_training_report(cand.evaluation.dir, trained, metrics, gate, lineage, summary)
    result = PipelineResult(
        version=None,
        gate=gate.status,
        reasons=gate.reasons,
        metrics=summary,
        status="unregistered",
        bundle=cand.bundle,
        report=report,
        lineage=lineage,
        checks=gate.checks,
    )
    if registry is not None and register:
        mv = _register(registry, cfg, cand, summary, gate, lineage, report)
        result.version, result.status = mv.id, str(getattr(mv.status, "value", mv.status))
        if (mv.gate, mv.reasons) != (gate.status, gate.reasons):
            # The registry's record is what approval goes by: report it, and say how this
            # run's gate differs rather than print a result the registry does not hold.
            result.gate, result.reasons = mv.gate, list(mv.reasons)
            result.gate_this_run = {"gate": gate.status, "reasons": gate.reasons}
            logger.warning(
                "%s is already registered with gate %s; this run's gate (%s%s) is not recorded "
                "for it",
                mv.id,
                mv.gate,
                gate.status,
                ": " + "; ".join(gate.reasons) if gate.reasons else "",
            )
    steps.record("gate_register", time.perf_counter() - t0)
    result.timings = steps.timings()
    return result


def _existing_registry(uri: str) -> Registry | None:
    """The registry at ``uri`` when there is one (an evaluate-only run compares with its
    approved model), else None; a missing local registry is not created."""
    from whichbin.errors import RegistryError
    from whichbin.registry import open_registry

    try:
        return open_registry(uri, create=False)
    except RegistryError as e:
        logger.info("no registry to compare with (%s): the gate checks thresholds only", e)
        return None


def _register(
    registry: Registry,
    cfg: PipelineConfig,
    cand: Candidate,
    summary: dict[str, Any],
    gate: GateResult,
    lineage: dict[str, Any],
    report: Path,
) -> ModelVersion:
    """The candidate's version: the one it was registered as before, else a new one."""
    name = cfg.registry.model_name
    existing = [v for v in registry.list(name) if v.lineage.get("candidate_sha256") == cand.sha256]
    if existing:
        logger.info("bundle already registered as %s", existing[-1].id)
        return existing[-1]
    return registry.register(
        name, cand.bundle, summary, gate.passed, gate.reasons, lineage, report=report.parent
    )


def _float_backbone(trained: HeadModel) -> bool:
    """False when the backbone is already INT8 (a head-only retrain of an INT8 bundle): it is
    not quantized a second time."""
    from whichbin.training.quantize import is_quantized

    if is_quantized(trained.backbone):
        logger.info("the backbone is already INT8: no second quantization")
        return False
    return True


def _maybe_int8(
    cfg: PipelineConfig,
    steps: StepCache,
    prepared: Any,
    rules: RulePack,
    trained: HeadModel,
    fp32: Candidate,
    evaluation: tuple[dict, list[str], LogitsCache],
) -> Candidate:
    """Keep the INT8 bundle when it loses at most ``int8_max_loss`` accuracy."""
    from whichbin.pipelines.train import int8_bundle

    eval_key, test_sources, logits = evaluation
    qbundle, q_emb = int8_bundle(cfg, prepared, trained, steps)
    qsha = sha256_file(qbundle)
    test = [r for r in prepared.rows if r.split == "test"]
    int8 = Candidate(
        qbundle,
        qsha,
        run_evaluation(
            steps,
            "evaluate_int8",
            {"bundle": qsha, **eval_key},
            lambda d: evaluate_embedded_step(
                d, qbundle, qsha, test, q_emb, trained, rules, test_sources, logits
            ),
        ),
    )
    metrics, qm = fp32.metrics, int8.metrics
    loss = metrics["accuracy"] - qm["accuracy"]
    summary = {
        "fp32_accuracy": metrics["accuracy"],
        "int8_accuracy": qm["accuracy"],
        "fp32_bin_accuracy": metrics["bin_accuracy"],
        "int8_bin_accuracy": qm["bin_accuracy"],
        "loss": loss,
        "fp32_bytes": fp32.bundle.stat().st_size,
        "int8_bytes": qbundle.stat().st_size,
        "method": cfg.training.int8_method,
    }
    if loss <= cfg.training.int8_max_loss:
        logger.info(
            "shipping INT8: accuracy %.4f vs FP32 %.4f", qm["accuracy"], metrics["accuracy"]
        )
        qm["int8"] = {"shipped": True, **summary}
        return int8
    logger.info("keeping FP32: INT8 loses %.4f accuracy (> %.4f)", loss, cfg.training.int8_max_loss)
    metrics["int8"] = {"shipped": False, **summary}
    return fp32
