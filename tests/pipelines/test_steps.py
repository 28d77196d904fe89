"""The SageMaker steps' pure parts: the config travelling in step arguments, the property
file's gate values, and the engine commands' one-line errors."""

from __future__ import annotations

from typer.testing import CliRunner

from whichbin.cli.main import app
from whichbin.config import GateConfig, PipelineConfig, TrainingConfig
from whichbin.pipelines.steps import config_from_settings, config_settings, evaluation_document


def test_config_travels_as_short_settings_and_back() -> None:
    cfg = PipelineConfig(
        work_dir="/somewhere",
        training=TrainingConfig(base_model="default", mode="partial", int8=False),
        gate=GateConfig(min_bin_recall={"compost": 0.5}),
    )
    settings = config_settings(cfg)
    assert "work_dir" not in settings  # each step gets its own paths
    assert settings["training.mode"] == "partial" and settings["training.int8"] == "false"
    assert all(len(f"{k}={v}") <= 256 for k, v in settings.items())  # SageMaker's limit
    back = config_from_settings(settings)
    assert back.training == cfg.training and back.gate == cfg.gate
    assert config_settings(PipelineConfig()) == {}


def test_evaluation_document_holds_one_value_per_gate_condition() -> None:
    gate = GateConfig(min_bin_recall={"compost": 0.6, "landfill": 0.3}, tolerance=0.01)
    result = {
        "metrics": {"bin_accuracy": 0.9, "macro_f1": 0.8, "bin_recall": {"compost": 0.5}},
        "gate": "failed",
        "reasons": ["compost recall 0.500 is below the minimum 0.600"],
        "checks": {"vs_approved": {"approved": 0.92, "tolerance": 0.01}},
        "lineage": {"manifest_hash": "m", "config_hash": "c", "code_version": "v"},
    }
    package = {
        "ModelPackageDescription": "d",
        "ModelMetrics": {"ModelQuality": {"Statistics": {"S3Uri": "s3://b/metrics.json"}}},
        "CustomerMetadataProperties": {
            "whichbin.registration": "s3://b/registration.json",
            "whichbin.sha256": "s",
            "whichbin.gate": "failed",
            "whichbin.artifact": "s3://b/model.onnx",
        },
    }
    doc = evaluation_document(result, gate, package)
    values = doc["gate"]["values"]
    assert values["recall_compost"] == 0.5
    assert values["recall_landfill"] == 1.0  # no landfill item in the test split: not measured
    assert abs(values["approved_floor"] - 0.91) < 1e-9 and values["vs_approved"] == 0.9
    assert doc["gate"]["passed"] == 0 and "compost recall" in doc["gate"]["summary"]
    assert doc["package"]["metrics"] == "s3://b/metrics.json"


def test_engine_commands_fail_in_one_line() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["pipeline", "definition", "--engine", "local"])
    assert res.exit_code == 1 and "pipeline run" in res.output
    res = runner.invoke(
        app,
        ["pipeline", "definition", "--bucket", "b", "--image", "i"],
        env={"WHICHBIN_SAGEMAKER_ROLE": ""},
    )
    assert res.exit_code == 1 and "--role" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["pipeline", "step", "evaluate", "--help"])
    assert res.exit_code == 0 and "Example" in res.output
