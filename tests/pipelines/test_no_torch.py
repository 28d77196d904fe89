"""The core install (no torch, timm or sklearn) runs the main job: the default pipeline
and the few-shot path a site runs (bundled backbone, head-only, bin-only corrections)
register a version; asking for torch without it is one line naming the extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import solid_image
from tests.pipelines.test_local_pipeline import make_photos
from whichbin.config import TrainingConfig

BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in ("torch", "torchvision", "timm", "sklearn") or top.startswith("efficientnet"):
            raise ImportError(f"{name} is not installed (hidden by the test)")
sys.meta_path.insert(0, _NoTorch())
from whichbin.cli.main import app
app()
"""


def test_corrections_register_a_version_without_torch(tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "photos", 8)
    (photos / "landfill").mkdir()
    for j in range(6):  # the joystick's corrections: a bin, no label
        solid_image(photos / "landfill" / f"c{j}.jpg", (220, 220, 30), size=(80, 60))
    cmd = [
        sys.executable, "-c", BLOCK_TORCH, "pipeline", "run", "--base-model", "default",
        "--data", str(photos), "--registry", str(tmp_path / "reg"),
        "--work-dir", str(tmp_path / "work"), "--json",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode in (0, 3), out.stderr[-2000:]
    res = json.loads(out.stdout)
    assert res["version"] == "trash-classifier/1"
    probe = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH.replace("app()", "import torch")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert probe.returncode != 0 and "hidden by the test" in probe.stderr
    from whichbin.inference import OnnxClassifier

    clf = OnnxClassifier(Path(res["bundle"]))
    assert sorted(clf.labels) == ["organic", "plastic", "trash"]  # corrections add none


def _run_without_torch(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", BLOCK_TORCH, *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **env}, cwd=tmp_path
    )


def test_the_default_pipeline_trains_gates_and_registers_without_torch(tmp_path: Path) -> None:
    """The main job after `pip install .`: no --base-model, no config, no torch."""
    photos = make_photos(tmp_path / "photos", 8)
    out = _run_without_torch(["pipeline", "run", "--data", str(photos), "--json"], tmp_path)
    assert out.returncode in (0, 3), out.stderr[-2000:]
    res = json.loads(out.stdout)
    assert res["version"] == "trash-classifier/1" and (tmp_path / "whichbin-registry").is_dir()
    assert "backbone" in res["timings"] and "finetune_partial" not in res["timings"]
    from whichbin.inference import OnnxClassifier

    assert OnnxClassifier(tmp_path / res["bundle"]).meta.backbone == "base:default"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("MODE", "partial"),
        ("BACKBONE", "efficientnet_lite1"),
        ("BASE_MODEL", "null"),
        ("BACKBONE", "resnet18"),
    ],
)
def test_asking_for_torch_without_it_is_one_line_naming_the_extra(
    tmp_path: Path, key: str, value: str
) -> None:
    photos = make_photos(tmp_path / "photos", 6)
    env = {f"WHICHBIN_PIPELINE__TRAINING__{key}": value}
    out = _run_without_torch(["pipeline", "run", "--data", str(photos)], tmp_path, **env)
    assert out.returncode == 1, out.stderr[-2000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: training.") and "pip install 'whichbin[train]'" in last
    assert "Traceback" not in out.stderr and not (tmp_path / "whichbin-registry").exists()
    assert not (tmp_path / "whichbin-work").exists()  # said before preparing any data


def test_base_model_defaults_to_the_bundled_model_unless_a_backbone_is_chosen() -> None:
    assert TrainingConfig().base_model == "default"
    assert TrainingConfig(epochs=5, head="mlp").base_model == "default"
    for own in ({"backbone": "efficientnet_lite1"}, {"weights": "w.pth"}, {"image_size": 96}):
        assert TrainingConfig.model_validate(own).base_model is None
    assert TrainingConfig(mode="partial").base_model is None
    assert TrainingConfig(backbone="efficientnet_lite0", base_model="default").base_model == (
        "default"
    )
