"""The quality gate: thresholds plus "not worse than the approved model". Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from whichbin.config import GateConfig


class GateResult(BaseModel):
    passed: bool
    reasons: list[str]
    checks: dict[str, Any]

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"


def evaluate_gate(
    metrics: Mapping[str, Any],
    cfg: GateConfig,
    approved: Mapping[str, Any] | None = None,
    approved_id: str | None = None,
) -> GateResult:
    """Every failed condition becomes one recorded reason.

    ``approved`` are the currently approved model's metrics measured on the SAME test split.
    """
    reasons: list[str] = []
    checks: dict[str, Any] = {}
    acc = float(metrics.get("bin_accuracy", 0.0))
    checks["bin_accuracy"] = {"value": acc, "min": cfg.min_bin_accuracy}
    if acc < cfg.min_bin_accuracy:
        reasons.append(f"bin accuracy {acc:.3f} is below the minimum {cfg.min_bin_accuracy:.3f}")
    f1 = float(metrics.get("macro_f1", 0.0))
    checks["macro_f1"] = {"value": f1, "min": cfg.min_macro_f1}
    if f1 < cfg.min_macro_f1:
        reasons.append(f"macro-F1 {f1:.3f} is below the minimum {cfg.min_macro_f1:.3f}")
    recalls = metrics.get("bin_recall", {})
    for b, minimum in sorted(cfg.min_bin_recall.items()):
        if b not in recalls:
            checks[f"recall.{b}"] = {"value": None, "min": minimum}
            continue  # the test split has no item of that bin: nothing to measure
        r = float(recalls[b])
        checks[f"recall.{b}"] = {"value": r, "min": minimum}
        if r < minimum:
            reasons.append(f"{b} recall {r:.3f} is below the minimum {minimum:.3f}")
    if approved is not None:
        key = cfg.compare_metric
        cand, base = float(metrics.get(key, 0.0)), float(approved.get(key, 0.0))
        checks["vs_approved"] = {
            "metric": key,
            "candidate": cand,
            "approved": base,
            "tolerance": cfg.tolerance,
            "approved_version": approved_id,
        }
        if cand < base - cfg.tolerance:
            reasons.append(
                f"{key} {cand:.3f} is worse than the approved model {approved_id or ''} "
                f"({base:.3f}) beyond the tolerance {cfg.tolerance:.3f}".replace("  ", " ")
            )
    return GateResult(passed=not reasons, reasons=reasons, checks=checks)
