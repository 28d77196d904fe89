"""Pure registry rules: ids, transitions, headline metrics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from whichbin.errors import RegistryError
from whichbin.registry.base import (
    ApprovalStatus,
    ModelVersion,
    TransitionRefused,
    approve_version,
    headline_metrics,
    parse_version_id,
    reject_version,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def version(gate: str = "passed", **kw) -> ModelVersion:  # noqa: ANN003
    reasons = ["accuracy 0.40 < 0.80"] if gate == "failed" else []
    return ModelVersion(
        id="trash-classifier/3",
        name="trash-classifier",
        number=3,
        sha256="ab" * 32,
        artifact="/r/model.onnx",
        size_bytes=10,
        gate=gate,
        reasons=reasons,
        created="2026-03-01T00:00:00Z",
        **kw,
    )


def test_status_values_are_sagemakers_verbatim() -> None:
    assert [s.value for s in ApprovalStatus] == ["PendingManualApproval", "Approved", "Rejected"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trash-classifier/7", ("trash-classifier", 7)),
        ("7", ("default-name", 7)),
        (" other/12 ", ("other", 12)),
    ],
)
def test_parse_version_id(text: str, expected: tuple[str, int]) -> None:
    assert parse_version_id(text, "default-name") == expected


@pytest.mark.parametrize(
    "text", ["", "trash-classifier", "x/0", "x/-1", "../x/1", "a b/1", "x/1.5"]
)
def test_parse_version_id_refuses_junk(text: str) -> None:
    with pytest.raises(RegistryError):
        parse_version_id(text)


def test_failed_gate_cannot_be_approved_and_says_why_and_what_next() -> None:
    with pytest.raises(TransitionRefused) as e:
        approve_version(version("failed"), "ana", "", T0)
    msg = str(e.value)
    assert "trash-classifier/3" in msg and "accuracy 0.40 < 0.80" in msg
    assert "whichbin pipeline run" in msg and "whichbin registry reject" in msg


def test_approve_records_who_when_and_note() -> None:
    v = approve_version(version(), "ana", "looks good", T0)
    assert v.status == ApprovalStatus.APPROVED
    assert (v.approved_by, v.approved_at, v.note) == ("ana", "2026-03-01T12:00:00Z", "looks good")


def test_approver_is_required() -> None:
    with pytest.raises(TransitionRefused, match="--by"):
        approve_version(version(), "  ", "", T0)


def test_reapproval_restamps_and_rejected_can_be_reversed() -> None:
    v = approve_version(version(), "ana", "", T0)
    again = approve_version(v, "bo", "rollback", T1)
    assert again.approved_by == "bo" and again.approved_at == "2026-03-02T12:00:00Z"
    rejected = reject_version(again, "bad on lids", "cy", T1)
    assert rejected.status == ApprovalStatus.REJECTED and rejected.rejected_reason == "bad on lids"
    reversed_ = approve_version(rejected, "ana", "retested", T1)
    assert reversed_.status == ApprovalStatus.APPROVED and reversed_.rejected_reason is None


def test_reject_rules() -> None:
    with pytest.raises(TransitionRefused, match="reason"):
        reject_version(version(), " ", "ana", T0)
    rejected = reject_version(version("failed"), "gate failed", "", T0)
    assert rejected.rejected_by is None
    with pytest.raises(TransitionRefused, match="already rejected"):
        reject_version(rejected, "again", "ana", T1)


def test_headline_metrics_top_level_or_test_section() -> None:
    assert headline_metrics({"accuracy": 0.9, "macro_f1": 1}) == {
        "accuracy": 0.9,
        "bin_accuracy": None,
        "macro_f1": 1.0,
    }
    assert headline_metrics({"test": {"bin_accuracy": 0.8}})["bin_accuracy"] == 0.8
    assert headline_metrics({"accuracy": "n/a"})["accuracy"] is None
