"""Metrics, calibration and the quality gate: pure functions on plain values."""

from __future__ import annotations

import numpy as np
import pytest

from whichbin.config import GateConfig
from whichbin.evaluation.calibration import (
    choose_threshold,
    expected_calibration_error,
    fit_temperature,
)
from whichbin.evaluation.gate import evaluate_gate
from whichbin.evaluation.metrics import classification_metrics

LABELS = ["organic", "trash", "plastic", "glass"]
L2B = {"organic": "compost", "trash": "landfill", "plastic": "recycling", "glass": "recycling"}


def test_metrics_count_label_and_bin_errors_separately() -> None:
    y = [0, 1, 2, 3, 3]
    probs = np.array(
        [
            [0.9, 0.05, 0.03, 0.02],  # organic ✓
            [0.1, 0.2, 0.7, 0.0],  # trash → plastic: label ✗, bin ✗
            [0.0, 0.0, 0.2, 0.8],  # plastic → glass: label ✗, bin ✓ (both recycling)
            [0.0, 0.1, 0.1, 0.8],  # glass ✓
            [0.0, 0.0, 0.6, 0.4],  # glass → plastic: label ✗, bin ✓
        ]
    )
    m = classification_metrics(y, probs, LABELS, L2B)
    assert m["accuracy"] == pytest.approx(2 / 5)
    assert m["bin_accuracy"] == pytest.approx(4 / 5)
    assert m["bin_recall"] == {"compost": 1.0, "landfill": 0.0, "recycling": 1.0}
    assert m["label_recall"]["glass"] == pytest.approx(0.5)
    assert np.asarray(m["confusion"]).sum() == 5
    assert m["confusion"][1][2] == 1


def test_temperature_recovers_overconfidence() -> None:
    rng = np.random.default_rng(0)
    n, k = 4000, 4
    true_logits = rng.normal(0, 1.0, (n, k))
    p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    t = fit_temperature(true_logits * 3.0, y)  # a model 3× too confident
    assert 2.5 < t < 3.5


def test_ece_zero_when_confidence_matches_accuracy() -> None:
    conf = np.array([0.8] * 10)
    correct = np.array([1] * 8 + [0] * 2)
    assert expected_calibration_error(conf, correct) == pytest.approx(0.0)
    assert expected_calibration_error(conf, np.ones(10)) == pytest.approx(0.2)


def test_threshold_meets_target_precision() -> None:
    conf = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([1, 1, 1, 1, 0, 1, 0])
    thr, prec, cov = choose_threshold(conf, correct, target=0.98)
    assert thr == pytest.approx(0.8)
    assert prec == 1.0 and cov == pytest.approx(4 / 7)


GOOD = {
    "bin_accuracy": 0.95,
    "macro_f1": 0.9,
    "bin_recall": {"compost": 0.9, "landfill": 0.8, "recycling": 0.97},
}


def test_gate_passes_good_candidate() -> None:
    g = evaluate_gate(GOOD, GateConfig())
    assert g.passed and g.reasons == [] and g.status == "passed"


def test_gate_records_every_failed_condition() -> None:
    bad = {
        "bin_accuracy": 0.5,
        "macro_f1": 0.4,
        "bin_recall": {"compost": 0.1, "landfill": 0.9, "recycling": 0.5},
    }
    g = evaluate_gate(bad, GateConfig(min_macro_f1=0.5))
    assert not g.passed
    text = " | ".join(g.reasons)
    assert len(g.reasons) == 4, text
    assert "bin accuracy 0.500" in text and "compost recall" in text and "recycling recall" in text


def test_gate_refuses_candidate_worse_than_approved() -> None:
    worse = dict(GOOD, bin_accuracy=0.91)
    g = evaluate_gate(
        worse,
        GateConfig(tolerance=0.01),
        approved={"bin_accuracy": 0.95},
        approved_id="trash-classifier/3",
    )
    assert not g.passed
    assert "worse than the approved model trash-classifier/3" in g.reasons[0]
    within = evaluate_gate(
        dict(GOOD, bin_accuracy=0.945), GateConfig(tolerance=0.01), approved={"bin_accuracy": 0.95}
    )
    assert within.passed


def test_min_bin_accuracy_is_what_the_gate_checks() -> None:
    g = evaluate_gate({**GOOD, "bin_accuracy": 0.85}, GateConfig(min_bin_accuracy=0.9))
    assert not g.passed and g.checks["bin_accuracy"]["min"] == 0.9
    assert "bin accuracy 0.850 is below the minimum 0.900" in g.reasons


def test_old_min_accuracy_key_is_a_deprecated_alias(
    tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from whichbin.config import load_settings
    from whichbin.errors import ConfigError

    old = tmp_path / "old.yaml"
    old.write_text("gate: {min_accuracy: 0.7}\n")
    with caplog.at_level("WARNING"):
        assert load_settings(old).pipeline.gate.min_bin_accuracy == 0.7
    warnings = [r.getMessage() for r in caplog.records if "min_accuracy" in r.getMessage()]
    assert len(warnings) == 1 and "gate.min_bin_accuracy" in warnings[0]
    assert "\n" not in warnings[0]

    monkeypatch.setenv("WHICHBIN_PIPELINE__GATE__MIN_ACCURACY", "0.65")
    assert load_settings().pipeline.gate.min_bin_accuracy == 0.65
    monkeypatch.delenv("WHICHBIN_PIPELINE__GATE__MIN_ACCURACY")

    both = tmp_path / "both.yaml"
    both.write_text("gate: {min_accuracy: 0.7, min_bin_accuracy: 0.8}\n")
    with pytest.raises(ConfigError) as e:
        load_settings(both)
    msg = str(e.value)
    assert "both.yaml" in msg and "min_accuracy" in msg and "min_bin_accuracy" in msg
    assert "\n" not in msg
    assert GateConfig(min_accuracy=0.6).min_bin_accuracy == 0.6  # Python callers too
    assert "min_accuracy" not in GateConfig().model_dump()
