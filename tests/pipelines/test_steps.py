"""The SageMaker steps' pure parts: the config travelling in step arguments, the property
file's gate values, and the engine commands' one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
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


@pytest.mark.parametrize("has_data_filter", [True, False])  # False: Python < 3.11.4 (Debian 12)
def test_model_tarballs_extract_plain_files_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, has_data_filter: bool
) -> None:
    import io
    import tarfile

    from whichbin.errors import ConfigError
    from whichbin.pipelines.steps import _extract_data

    if not has_data_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)

    def tarball(name: str, *members: tarfile.TarInfo) -> Path:
        path = tmp_path / name
        with tarfile.open(path, "w:gz") as tar:
            for m in members:
                data = b"x" if m.isfile() else None
                tar.addfile(m, io.BytesIO(data) if data else None)
        return path

    def file(name: str) -> tarfile.TarInfo:
        m = tarfile.TarInfo(name)
        m.size = 1
        return m

    link = tarfile.TarInfo("work/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    good = tarball("good.tar.gz", file("work/a.txt"))
    with tarfile.open(good) as tar:
        _extract_data(tar, tar.getmembers(), tmp_path / "out", good)
    assert (tmp_path / "out" / "work" / "a.txt").read_bytes() == b"x"
    for bad in (file("work/../../evil.txt"), link):
        path = tarball(f"bad-{bad.type!r}.tar.gz", bad)
        with tarfile.open(path) as tar, pytest.raises(ConfigError, match="refused"):
            _extract_data(tar, tar.getmembers(), tmp_path / "out2", path)
    assert not (tmp_path / "evil.txt").exists()


def test_bad_yaml_in_a_setting_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["pipeline", "step", "prepare", "--data", str(tmp_path), "--work", str(tmp_path / "w")]
        + ["--set", "training.mode=a: b: c"],
    )
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert "setting training.mode: invalid YAML value" in res.output


def test_start_parameter_without_a_value_is_refused_in_one_line() -> None:
    for bad in ("MinMacroF1", "=0.8"):
        res = CliRunner().invoke(app, ["pipeline", "start", "--region", "eu-west-1", "-p", bad])
        assert res.exit_code == 1 and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1
        assert f"--parameter {bad!r}: expected NAME=VALUE" in res.output
