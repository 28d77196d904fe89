"""The pipeline's steps as separate entry points: what each SageMaker Pipelines job runs.

``prepare`` → ``train`` → ``evaluate`` hand the local engine's work directory on from job
to job (the dataset, the step cache, the embeddings). Each step calls the local engine
(``pipelines/local.py``): ``train`` runs ``prepare_step`` (cached) and ``train_and_export``;
``evaluate`` runs ``run_pipeline`` itself, whose preparation and training are then cache
hits, so its metrics, gate and lineage are exactly what ``whichbin pipeline run`` computes.
The registration is the pipeline's own ``ModelStep``: ``evaluate`` has the ``sagemaker://``
registry stage the candidate (upload it, without creating the model package) and writes the
registration's arguments into ``evaluation.json``, the property file the quality gate reads.

Container paths follow SageMaker's conventions under ``/opt/ml`` (``WHICHBIN_OPT_ML``
moves that root, for running the steps outside a container).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import yaml

from whichbin.config import GateConfig, PipelineConfig, load_settings
from whichbin.errors import ConfigError, RegistryError
from whichbin.textfile import parse_yaml

logger = logging.getLogger(__name__)

OPT_ML_ENV = "WHICHBIN_OPT_ML"
# Settings a step receives from its own arguments, never from the embedded config.
STEP_OWNED = ("work_dir", "data.sources", "registry.uri")
EVALUATION_FILE = "evaluation.json"


def opt_ml() -> Path:
    """SageMaker's container root (``/opt/ml``), or ``$WHICHBIN_OPT_ML``."""
    return Path(os.environ.get(OPT_ML_ENV, "/opt/ml"))


# -- config in step arguments ---------------------------------------------------------------
def config_settings(cfg: PipelineConfig) -> dict[str, str]:
    """The pipeline config as ``dotted.key → YAML value`` for the settings given explicitly
    (in the YAML, or by the caller), so validators that fill in a value from others resolve
    the same way again: small enough for SageMaker's 256-character container arguments and
    hyperparameters, and readable in the definition."""
    out: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and (node or not prefix):
            for k, v in sorted(node.items()):
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif prefix not in STEP_OWNED:
            out[prefix] = yaml.safe_dump(node, default_flow_style=True, width=10**6).strip()
            out[prefix] = out[prefix].removesuffix("\n...").strip()

    walk("", cfg.model_dump(mode="json", exclude_unset=True))
    return out


def config_from_settings(settings: list[str] | dict[str, str]) -> PipelineConfig:
    """The pipeline config from ``key=value`` settings (``config_settings``' inverse)."""
    pairs = (
        settings.items() if isinstance(settings, dict) else [_split_setting(s) for s in settings]
    )
    tree: dict[str, Any] = {}
    for key, value in pairs:
        node = tree
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = parse_yaml(value, f"setting {key}", "YAML value", ConfigError)
    return load_settings(None, {"pipeline": tree}).pipeline


def _split_setting(setting: str) -> tuple[str, str]:
    key, sep, value = setting.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {setting!r}: expected KEY=VALUE, e.g. training.epochs=50")
    return key.strip(), value


def with_gate(
    cfg: PipelineConfig,
    min_bin_accuracy: float | None = None,
    min_macro_f1: float | None = None,
    min_recall: dict[str, float] | None = None,
    tolerance: float | None = None,
) -> PipelineConfig:
    """``cfg`` with the gate thresholds a pipeline execution passed as parameters."""
    update: dict[str, Any] = {}
    if min_bin_accuracy is not None:
        update["min_bin_accuracy"] = min_bin_accuracy
    if min_macro_f1 is not None:
        update["min_macro_f1"] = min_macro_f1
    if min_recall:
        update["min_bin_recall"] = {**cfg.gate.min_bin_recall, **min_recall}
    if tolerance is not None:
        update["tolerance"] = tolerance
    gate = GateConfig.model_validate({**cfg.gate.model_dump(), **update})
    return cfg.model_copy(update={"gate": gate})


# -- the steps ----------------------------------------------------------------------------------
def prepare(cfg: PipelineConfig, sources: list[Path], work: Path) -> dict[str, Any]:
    """Import, check, dedupe, split and write the manifest into ``work/dataset``."""
    from whichbin.pipelines.cache import StepCache
    from whichbin.pipelines.local import prepare_step

    cfg = cfg.model_copy(update={"work_dir": str(work)})
    prepared, _ = prepare_step(cfg, sources, StepCache(work / "steps"))
    summary = {
        "manifest_hash": prepared.manifest_hash,
        "labels": prepared.labels,
        "images": {s: sum(r.split == s for r in prepared.rows) for s in ("train", "val", "test")},
        "quarantined": len(prepared.quarantined),
    }
    (work / "prepared.json").write_text(json.dumps(summary, indent=1))
    return summary


def train(cfg: PipelineConfig, work: Path, model_dir: Path) -> dict[str, Any]:
    """Train on the prepared ``work`` dir; ``model_dir`` gets the bundle and the work dir's
    step cache and embeddings (``work/``), which the evaluate step continues from."""
    from whichbin.pipelines.cache import StepCache
    from whichbin.pipelines.local import prepare_step
    from whichbin.pipelines.train import train_and_export

    cfg = cfg.model_copy(update={"work_dir": str(work)})
    steps = StepCache(work / "steps")
    prepared, rules = prepare_step(cfg, [work / "dataset"], steps)
    trained = train_and_export(cfg, prepared, list(prepared.labels), rules, steps, False)
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(trained.bundle, model_dir / "model.onnx")
    for part in ("steps", "cache"):
        if (work / part).is_dir():
            shutil.copytree(work / part, model_dir / "work" / part, dirs_exist_ok=True)
    return {"bundle": "model.onnx", "timings": steps.timings()}


def evaluate(
    cfg: PipelineConfig, work: Path, model: Path, registry: Any, out: Path
) -> dict[str, Any]:
    """Evaluate, gate against the approved version and stage the candidate; writes
    ``out/evaluation.json`` and returns its content."""
    from whichbin.pipelines.local import run_pipeline

    if not hasattr(registry, "staging"):
        raise RegistryError(f"--registry {registry.uri}: the evaluate step needs sagemaker://")
    _restore_work(model, work)
    cfg = cfg.model_copy(update={"work_dir": str(work)})
    registry.staging = True  # upload the candidate; the pipeline's ModelStep registers it
    result = run_pipeline(cfg, [work / "dataset"], registry, register=True, progress=False)
    if registry.staged is None:
        raise RegistryError(f"{work}: the evaluation staged no candidate")
    checks = {**result.to_json(), "checks": result.checks}
    doc = evaluation_document(checks, cfg.gate, registry.staged)
    out.mkdir(parents=True, exist_ok=True)
    (out / EVALUATION_FILE).write_text(json.dumps(doc, indent=1))
    if result.report is not None and result.report.parent.is_dir():
        shutil.copytree(result.report.parent, out / "report", dirs_exist_ok=True)
    return doc


def _extract_data(
    tar: tarfile.TarFile, members: list[tarfile.TarInfo], dest: Path, src: Path
) -> None:
    """Extract plain files and folders only, inside ``dest``: tarfile's ``data`` filter
    where this Python has it (3.11.4+), else the same refusal by hand (Debian 12 ships 3.11.2).

    Raises:
        ConfigError: A member is a link, a device, absolute or climbs out of ``dest``.
    """
    if hasattr(tarfile, "data_filter"):
        try:
            tar.extractall(dest, members=members, filter="data")
        except tarfile.FilterError as e:
            raise ConfigError(f"{src}: refused to extract it ({e})") from e
        return
    root = dest.resolve()
    for m in members:
        target = (root / m.name).resolve()
        if not (m.isfile() or m.isdir()) or not target.is_relative_to(root):
            raise ConfigError(f"{src}: refused to extract {m.name!r} (not a plain file inside)")
    tar.extractall(dest, members=members)  # noqa: S202 - every member checked above


def _restore_work(model: Path, work: Path) -> None:
    """Put the training job's step cache (``model.tar.gz`` or its folder) into ``work``."""
    if model.is_dir():
        tars = sorted(model.glob("*.tar.gz"))
        src = tars[0] if tars else model
    else:
        src = model
    if src.is_file():
        with tarfile.open(src) as tar:
            members = [m for m in tar.getmembers() if m.name.split("/")[0] in ("work", ".")]
            _extract_data(tar, members, work.parent / ".model", src)
        src = work.parent / ".model"
    if not (src / "work").is_dir():
        raise ConfigError(f"{model}: not a whichbin training output (no work/ inside)")
    shutil.copytree(src / "work", work, dirs_exist_ok=True)


def evaluation_document(
    result: dict[str, Any], gate: GateConfig, package: dict[str, Any]
) -> dict[str, Any]:
    """``evaluation.json``: the pipeline's property file. ``gate.values`` holds one number per
    condition of the pipeline's quality gate (the local gate's, the same thresholds); a bin
    the test split has no item of counts as met, as in the local gate."""
    metrics = result["metrics"]
    recalls = metrics.get("bin_recall") or {}
    values: dict[str, float] = {
        "bin_accuracy": float(metrics.get("bin_accuracy", 0.0)),
        "macro_f1": float(metrics.get("macro_f1", 0.0)),
    }
    for b in gate.min_bin_recall:
        values[f"recall_{b}"] = float(recalls[b]) if b in recalls else 1.0
    checks = result.get("checks") or {}
    vs = checks.get("vs_approved")
    values["vs_approved"] = float(metrics.get(gate.compare_metric, 0.0))
    values["approved_floor"] = (
        float(vs["approved"]) - float(vs["tolerance"]) if vs else -1.0  # no approved model
    )
    props = package["CustomerMetadataProperties"]
    lineage = result.get("lineage") or {}
    return {
        "metrics": metrics,
        "gate": {
            "status": result["gate"],
            "passed": 1 if result["gate"] == "passed" else 0,
            "reasons": result["reasons"],
            "summary": "; ".join(result["reasons"]) or "none",
            "values": values,
        },
        "package": {
            "registration": props["whichbin.registration"],
            "sha256": props["whichbin.sha256"],
            "gate": props["whichbin.gate"],
            "artifact": props["whichbin.artifact"],
            "metrics": package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"],
            "description": package["ModelPackageDescription"],
        },
        "lineage": {
            "manifest_hash": str(lineage.get("manifest_hash", "")),
            "config_hash": str(lineage.get("config_hash", "")),
            "code_version": str(lineage.get("code_version", "")),
        },
    }
