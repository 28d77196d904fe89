"""whichbin.inference is the neutral package every stage imports downward: it imports none."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from whichbin.inference import softmax

STAGES = (
    "cli", "training", "evaluation", "registry", "deploy", "edge", "pipelines", "web", "pi",
    "processing", "messaging",
)  # fmt: skip


def test_inference_imports_no_stage_package() -> None:
    code = (
        "import json, sys, whichbin.inference\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('whichbin.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "whichbin.inference.classifier" in loaded  # the probe sees what the package loads
    stages = [m for m in loaded if m.split(".")[1] in STAGES]
    assert stages == [], f"whichbin.inference pulls in {stages}"


def test_softmax_rows_sum_to_one_and_temperature_flattens() -> None:
    logits = np.array([[2.0, 1.0, 0.0], [1000.0, 0.0, -1000.0]], dtype=np.float32)
    p = softmax(logits)
    assert p.dtype == np.float32 and np.allclose(p.sum(axis=1), 1.0)
    assert np.isfinite(p).all() and p[1, 0] == 1.0  # stable for huge logits
    np.testing.assert_allclose(p[0], np.exp([2, 1, 0]) / np.exp([2, 1, 0]).sum(), rtol=1e-6)
    hot, cold = softmax(logits[:1], 4.0), softmax(logits[:1], 0.25)
    assert hot.max() < p[0].max() < cold.max()
    np.testing.assert_allclose(softmax(logits[:1] * 2.0, 2.0), p[:1], rtol=1e-6)
