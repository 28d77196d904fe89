"""The SageMaker Pipelines definition: its structure, a snapshot, and its own commands run
locally in order on real photos, registering a candidate equal in metrics to the local
engine's on the same data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.aws.sagemaker_runner import LocalSagemaker, dockerfile_entrypoint
from whichbin.config import DataConfig, GateConfig, PipelineConfig, TrainingConfig

pytest.importorskip("sagemaker.core", reason="needs the SageMaker SDK: pip install '.[sagemaker]'")

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = Path(__file__).parent / "snapshots" / "sagemaker_definition.json"
LABELS = ("glass", "paper", "trash")  # bins: recycling, recycling, landfill
PER_LABEL = 12


def pipeline_config(work: Path | None = None) -> PipelineConfig:
    """Head-only on the bundled model's backbone (no torch): the definition's config."""
    cfg = PipelineConfig(
        training=TrainingConfig(base_model="default", int8=False, epochs=80),
        gate=GateConfig(min_bin_accuracy=0.3, min_bin_recall={"landfill": 0.0, "recycling": 0.2}),
        data=DataConfig(min_per_label=4),
    )
    if work is not None:
        cfg.work_dir = str(work)
    return cfg


def target():  # noqa: ANN201
    from whichbin.pipelines.sagemaker import SagemakerTarget

    return SagemakerTarget(
        role="arn:aws:iam::123456789012:role/whichbin-sagemaker",
        bucket="whichbin-test",
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/whichbin:test",
        region="us-east-1",
    )


@pytest.fixture(scope="module")
def definition() -> dict:
    """Compiled once, offline (no AWS credentials or network needed)."""
    from whichbin.pipelines.sagemaker import definition_json

    return json.loads(definition_json(pipeline_config(), target()))


def test_definition_structure(definition: dict) -> None:
    steps = {s["Name"]: s for s in definition["Steps"]}
    assert [(s["Name"], s["Type"]) for s in definition["Steps"]] == [
        ("Prepare", "Processing"),
        ("Train", "Training"),
        ("Evaluate", "Processing"),
        ("QualityGate", "Condition"),
    ]
    params = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert params["ModelApprovalStatus"] == "PendingManualApproval"
    assert params["ModelPackageGroupName"] == "trash-classifier"
    assert params["MinBinAccuracy"] == 0.3 and params["MinMacroF1"] == 0.0
    assert params["MinRecallRecycling"] == 0.2 and params["MinRecallLandfill"] == 0.0
    assert {"InputDataUri", "ProcessingInstanceType", "TrainingInstanceType", "ImageUri"} <= set(
        params
    )
    for name in ("Prepare", "Train", "Evaluate"):  # unchanged re-runs are free
        assert steps[name]["CacheConfig"]["Enabled"] is True
    # Every job runs a whichbin entry point of the one image.
    for name, verb in (("Prepare", "prepare"), ("Evaluate", "evaluate")):
        app = steps[name]["Arguments"]["AppSpecification"]
        assert app["ContainerEntrypoint"] == ["whichbin", "pipeline", "step", verb]
        assert app["ImageUri"] == {"Get": "Parameters.ImageUri"}
    algo = steps["Train"]["Arguments"]["AlgorithmSpecification"]
    assert algo["TrainingImage"] == {"Get": "Parameters.ImageUri"}
    assert dockerfile_entrypoint(REPO / "Dockerfile") == ["whichbin", "pipeline", "step"]
    assert steps["Train"]["Arguments"]["HyperParameters"]["training.epochs"] == "80"
    # Dependencies: train reads prepare's output; evaluate reads both.
    channel = steps["Train"]["Arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert channel["S3Uri"] == {
        "Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['work'].S3Output.S3Uri"
    }
    inputs = [i["S3Input"]["S3Uri"] for i in steps["Evaluate"]["Arguments"]["ProcessingInputs"]]
    assert {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"} in inputs
    assert steps["Evaluate"]["PropertyFiles"] == [
        {
            "PropertyFileName": "Evaluation",
            "OutputName": "evaluation",
            "FilePath": "evaluation.json",
        }
    ]
    # The gate: one condition per local-gate check, over the property file.
    gate = steps["QualityGate"]["Arguments"]
    lefts = [c["LeftValue"]["Std:JsonGet"] for c in gate["Conditions"]]
    assert all(c["Type"] == "GreaterThanOrEqualTo" for c in gate["Conditions"])
    assert all(
        g["PropertyFile"] == {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"} for g in lefts
    )
    assert [g["Path"] for g in lefts] == [
        "gate.values.bin_accuracy",
        "gate.values.macro_f1",
        "gate.values.recall_landfill",
        "gate.values.recall_recycling",
        "gate.values.vs_approved",
    ]
    assert [c["RightValue"].get("Get") for c in gate["Conditions"][:4]] == [
        "Parameters.MinBinAccuracy",
        "Parameters.MinMacroF1",
        "Parameters.MinRecallLandfill",
        "Parameters.MinRecallRecycling",
    ]
    (fail,) = gate["ElseSteps"]
    assert fail["Type"] == "Fail"
    message = fail["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert message[1]["Std:JsonGet"]["Path"] == "gate.summary"  # the failed conditions
    (reg,) = gate["IfSteps"]
    assert reg["Type"] == "RegisterModel"
    args = reg["Arguments"]
    assert args["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert args["ModelPackageGroupName"] == {"Get": "Parameters.ModelPackageGroupName"}
    stats = args["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert stats["S3Uri"]["Std:JsonGet"]["Path"] == "package.metrics"
    assert {
        "whichbin.registration",
        "whichbin.sha256",
        "whichbin.manifest_hash",
        "whichbin.config_hash",
        "whichbin.code_version",
    } <= set(args["CustomerMetadataProperties"])


def test_definition_matches_the_snapshot(definition: dict) -> None:
    """An unintended change to the definition fails here. After an intended one:
    WHICHBIN_UPDATE_SNAPSHOTS=1 python -m pytest tests/aws/test_sagemaker_pipeline.py"""
    text = json.dumps(definition, indent=1, sort_keys=True) + "\n"
    if os.environ.get("WHICHBIN_UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text(), "the definition changed: see the test's docstring"


def subset(shared_data: Path, dest: Path) -> Path:
    """A few real photos per label."""
    for label in LABELS:
        (dest / label).mkdir(parents=True)
        for f in sorted((shared_data / "trashnet" / label).glob("*.jpg"))[:PER_LABEL]:
            shutil.copy2(f, dest / label / f.name)
    return dest


@pytest.mark.slow
def test_the_definitions_commands_register_what_the_local_engine_registers(
    definition: dict, aws: str, shared_data: Path, tmp_path: Path
) -> None:
    import boto3

    from whichbin.pipelines.local import run_pipeline
    from whichbin.registry import open_registry

    photos = subset(shared_data, tmp_path / "photos")
    local = run_pipeline(
        pipeline_config(tmp_path / "local-work"),
        [photos],
        str(tmp_path / "local-reg"),
        progress=False,
    )
    assert local.gate == "passed"

    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket="whichbin-test")
    runner = LocalSagemaker(
        definition, tmp_path / "container", s3, sm, dockerfile_entrypoint(REPO / "Dockerfile")
    )
    runner.upload(photos, "s3://whichbin-test/data/photos")
    sm.create_model_package_group(ModelPackageGroupName="trash-classifier")
    runner.run({"InputDataUri": "s3://whichbin-test/data/photos"})

    assert runner.failed is None
    assert runner.ran == ["Prepare", "Train", "Evaluate", "Register", "QualityGate"]
    (version,) = open_registry("sagemaker://trash-classifier?bucket=whichbin-test").list()
    assert version.status.value == "PendingManualApproval" and version.gate == "passed"
    ours, theirs = dict(version.metrics), dict(local.metrics)
    # Sources are named by where each engine saw them (a folder here, the container's input).
    assert list(ours.pop("per_source").values()) == list(theirs.pop("per_source").values())
    assert ours == theirs
    assert version.lineage["manifest_hash"] == local.lineage["manifest_hash"]
    described = sm.describe_model_package(
        ModelPackageName=sm.list_model_packages(ModelPackageGroupName="trash-classifier")[
            "ModelPackageSummaryList"
        ][0]["ModelPackageArn"]
    )
    props = described["CustomerMetadataProperties"]
    assert props["whichbin.manifest_hash"] == local.lineage["manifest_hash"]
    assert props["whichbin.code_version"] == local.lineage["code_version"]
    assert described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].startswith(
        "s3://whichbin-test/"
    )


def test_an_aws_refusal_is_one_line() -> None:
    """An invalid bucket name is refused by S3 (moto) while compiling: one line, exit 1."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "whichbin", "pipeline", "definition", "--bucket", "b",
         "--role", "arn:aws:iam::123456789012:role/x", "--image", "1.dkr.ecr.x/w:1",
         "--region", "eu-west-1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    assert "InvalidBucketName" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
