"""Metrics per data source (pure), and the table the report and the CLI print from them."""

from __future__ import annotations

import numpy as np
import pytest

from whichbin.evaluation.evaluate import metrics_from_probs
from whichbin.evaluation.per_source import per_source_metrics, per_source_rows
from whichbin.evaluation.report import per_source_table
from whichbin.rules import load_rules

LABELS = ["organic", "plastic", "trash"]  # compost, recycling, landfill
L2B = {"organic": "compost", "plastic": "recycling", "trash": "landfill", "glass": "recycling"}


def one_hot(idx: list[int], p: float = 0.9) -> np.ndarray:
    out = np.full((len(idx), len(LABELS)), (1 - p) / (len(LABELS) - 1))
    out[np.arange(len(idx)), idx] = p
    return out


def test_each_source_gets_its_own_accuracy_and_recall() -> None:
    truth = ["organic", "plastic", "trash", "organic", "plastic", "trash"]
    pred = [0, 1, 2, 1, 1, 1]  # kitchen: all right; office: organic and trash → plastic
    sources = ["kitchen"] * 3 + ["office"] * 3
    m = per_source_metrics(one_hot(pred), LABELS, truth, sources, L2B)
    assert list(m) == ["kitchen", "office"]
    assert m["kitchen"] == {
        "n": 3,
        "accuracy": 1.0,
        "bin_accuracy": 1.0,
        "bin_recall": {"compost": 1.0, "landfill": 1.0, "recycling": 1.0},
    }
    office = m["office"]
    assert office["n"] == 3
    assert office["accuracy"] == pytest.approx(1 / 3)
    assert office["bin_accuracy"] == pytest.approx(1 / 3)
    assert office["bin_recall"] == {"compost": 0.0, "landfill": 0.0, "recycling": 1.0}


def test_threshold_gives_coverage_and_unknown_labels_count_only_at_bin_level() -> None:
    probs = np.vstack([one_hot([1], 0.95), one_hot([1], 0.5), one_hot([2], 0.95)])
    truth = ["glass", "plastic", "organic"]  # the model has no "glass": bin-level only
    m = per_source_metrics(probs, LABELS, truth, ["a", "a", "a"], L2B, threshold=0.8)["a"]
    assert m["accuracy"] == pytest.approx(1 / 2)  # of the 2 known: plastic right, organic not
    assert m["bin_accuracy"] == pytest.approx(2 / 3)
    assert m["coverage"] == pytest.approx(2 / 3)
    assert m["decided_accuracy"] == pytest.approx(1 / 2)  # glass→recycling right, organic wrong


def test_label_accuracy_is_none_when_no_label_is_known() -> None:
    m = per_source_metrics(one_hot([1]), LABELS, ["glass"], ["x"], L2B)
    assert m["x"]["accuracy"] is None and m["x"]["bin_accuracy"] == 1.0


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="sources"):
        per_source_metrics(one_hot([0, 1]), LABELS, ["organic", "plastic"], ["a"], L2B)


def test_metrics_from_probs_adds_per_source_and_table_renders_it() -> None:
    rules = load_rules(None)
    truth = ["organic", "plastic", "trash", "plastic"]
    m = metrics_from_probs(one_hot([0, 1, 2, 0]), LABELS, truth, rules, 0.5, ["a", "a", "b", "b"])
    assert m["per_source"]["b"]["bin_recall"] == {"landfill": 1.0, "recycling": 0.0}
    assert m["per_source"]["a"]["n"] == 2 and m["bin_accuracy"] == pytest.approx(0.75)
    rows = per_source_rows(m["per_source"])
    assert rows[1][:4] == ["b", "2", "50.0", "50.0"]
    assert rows[1][4] == "–/100.0/0.0"  # compost / landfill / recycling
    html = per_source_table(m["per_source"])
    assert "<td>b</td>" in html and "per data source" in html
    assert per_source_table({}) == ""
