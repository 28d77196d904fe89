"""``whichbin pipeline run`` through the real root app: where the summary goes, exit code 3
when the gate failed, and what a re-run of an already registered bundle reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from tests.helpers import COLORS, solid_image
from tests.pipelines.test_local_pipeline import make_photos
from whichbin.cli.main import app
from whichbin.registry import open_registry

runner = CliRunner()


STRICT = "{min_macro_f1: 0.95, min_bin_recall: {}}"  # glass and plastic look alike
LAX = "{min_bin_accuracy: 0.5, min_bin_recall: {}}"


def confusable_photos(root: Path) -> Path:
    """Photos whose bins are told apart at once, but two recycling labels (plastic, glass)
    that look alike: a gate on bin accuracy passes, one on label macro-F1 fails."""
    make_photos(root, 24)  # enough that the test split holds several of each
    rng = np.random.default_rng(7)
    (root / "glass").mkdir()
    for j in range(24):
        rgb = tuple(int(np.clip(c + rng.integers(-40, 40), 0, 255)) for c in COLORS["recycling"])
        solid_image(root / "glass" / f"g_{j}.jpg", rgb, size=(64 + j % 7, 48))
    return root


def write_config(tmp_path: Path, color_bundle: Path, gate: str) -> Path:
    cfg = tmp_path / f"pipeline-{abs(hash(gate))}.yaml"
    cfg.write_text(
        f"work_dir: {tmp_path / 'work'}\n"
        f"training: {{base_model: {color_bundle}, int8: false, epochs: 60}}\n"
        f"gate: {gate}\n"
    )
    return cfg


def pipeline_run(cfg: Path, photos: Path, reg: Path, *flags: str):  # noqa: ANN201
    args = ["pipeline", "run", "--config", cfg, "--data", photos, "--registry", reg, *flags]
    return runner.invoke(app, [str(a) for a in args])


def first_run(tmp_path: Path, color_bundle: Path, *flags: str):  # noqa: ANN201
    """A lax gate's first run: (photos, registry, CLI result)."""
    photos, reg = confusable_photos(tmp_path / "photos"), tmp_path / "reg"
    r = pipeline_run(write_config(tmp_path, color_bundle, LAX), photos, reg, *flags)
    assert r.exit_code == 0, r.output
    return photos, reg, r


def test_summary_on_stdout_and_exit_3_when_the_gate_failed(
    tmp_path: Path, color_bundle: Path
) -> None:
    _, reg, r = first_run(tmp_path, color_bundle)
    assert "trash-classifier/1: gate passed, status PendingManualApproval" in r.stdout
    assert "bin accuracy" in r.stdout and "report: " in r.stdout
    assert "status PendingManualApproval" not in r.stderr  # logs only there
    assert "step train" in r.stderr

    strict = write_config(tmp_path, color_bundle, STRICT)
    photos2 = make_photos(tmp_path / "photos", 2, start=200)  # a new candidate bundle
    r = pipeline_run(strict, photos2, reg, "--json")
    assert r.exit_code == 3, r.output
    doc = json.loads(r.stdout)  # the JSON is still printed, and only it
    assert doc["gate"] == "failed" and doc["version"] == "trash-classifier/2"
    assert any("macro-F1" in reason for reason in doc["reasons"])

    r = pipeline_run(strict, photos2, reg)  # human output: the same exit code
    assert r.exit_code == 3, r.output
    assert "gate failed" in r.stdout and "macro-F1" in r.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text("gate: {min_bin_accuracy: 2}\n")
    r = pipeline_run(bad, photos2, reg)
    assert r.exit_code == 1 and "gate.min_bin_accuracy" in r.stderr  # a user error stays 1


def test_strict_rerun_of_a_registered_bundle_prints_what_the_registry_holds(
    tmp_path: Path, color_bundle: Path
) -> None:
    photos, reg, r = first_run(tmp_path, color_bundle, "--json")
    version = json.loads(r.stdout)["version"]
    open_registry(str(reg)).approve(version, by="ana")

    strict = write_config(tmp_path, color_bundle, STRICT)
    r = pipeline_run(strict, photos, reg, "--json")
    assert r.stdout, (r.stderr, r.exception)
    doc = json.loads(r.stdout)
    held = open_registry(str(reg)).get(version)
    assert doc["version"] == version and held.gate == "passed"
    assert (doc["gate"], doc["reasons"], doc["status"]) == (held.gate, held.reasons, "Approved")
    assert r.exit_code == 0, r.output  # the exit code follows the printed gate
    assert doc["gate_this_run"]["gate"] == "failed", doc
    assert any("macro-F1" in reason for reason in doc["gate_this_run"]["reasons"])

    r = pipeline_run(strict, photos, reg)
    assert f"{version}: gate passed, status Approved" in r.stdout
    assert "gate failed" not in r.stdout
    assert "this run's gate config gives failed (not recorded)" in r.stdout
