"""The few-shot path a site runs (bundled backbone, head-only, bin-only corrections)
registers a version on a machine without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import solid_image
from tests.pipelines.test_local_pipeline import make_photos

BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith(("torch.", "torchvision", "timm")):
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
