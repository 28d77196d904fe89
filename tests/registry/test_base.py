"""Pure registry rules: ids, transitions, headline metrics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from whichbin.contract import check_device_id
from whichbin.errors import ConfigError, RegistryError
from whichbin.registry.base import (
    MAX_NOTE,
    ApprovalStatus,
    ModelVersion,
    TransitionRefused,
    approve_version,
    headline_metrics,
    new_pin,
    parse_version_id,
    reject_version,
    rollback_version,
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


@pytest.mark.parametrize(
    "bad",
    [
        "fleet",
        "Fleet",
        "",
        "+",
        "#",
        "a/b",
        "cam+",
        "cam#",
        "-cam",
        "a b",
        "a\x00",
        "c\n",
        "x" * 65,
    ],
)
def test_device_ids_that_would_reach_other_topics_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="^--device ") as e:
        check_device_id(bad, "--device")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("good", ["bin-1", "cam_2", "a", "kitchen.cam:3", "x" * 64])
def test_valid_device_ids_pass(good: str) -> None:
    assert check_device_id(good) == good


@pytest.mark.parametrize("bad", ["99999999999999999999999", "1" * 19, "²", "٣", "-1"])
def test_version_numbers_beyond_any_registry_are_not_ids(bad: str) -> None:
    with pytest.raises(RegistryError, match="not a version id"):
        parse_version_id(f"trash-classifier/{bad}")


def test_notes_reasons_and_names_are_capped() -> None:
    v = version()
    approve_version(v, "ana", "n" * MAX_NOTE, T0)  # the cap itself is fine
    with pytest.raises(RegistryError, match=r"^note: 20000000 characters, at most 2000"):
        approve_version(v, "ana", "n" * 20_000_000, T0)
    with pytest.raises(RegistryError, match=r"^by: "):
        approve_version(v, "a" * 1000, "", T0)
    with pytest.raises(RegistryError, match=r"^reason: "):
        reject_version(v, "r" * (MAX_NOTE + 1), "bo", T0)


def test_rollback_needs_an_approved_version_and_a_reason() -> None:
    with pytest.raises(TransitionRefused, match="not Approved"):
        rollback_version(version(), "ana", "v4 confuses lids", T0)
    approved = approve_version(version(), "ana", "", T0)
    with pytest.raises(TransitionRefused, match="needs a reason"):
        rollback_version(approved, "bo", " ", T1)
    back = rollback_version(approved, "bo", "v4 confuses lids", T1)
    assert back.approved_by == "bo" and back.note == "rollback: v4 confuses lids"
    assert back.approved_at == "2026-03-02T12:00:00Z"


def test_pins_need_a_valid_device_and_an_approved_version() -> None:
    with pytest.raises(TransitionRefused, match="not Approved"):
        new_pin("cam1", version(), "ana", "", T0)
    approved = approve_version(version(), "ana", "", T0)
    with pytest.raises(ConfigError, match="reserved"):
        new_pin("fleet", approved, "ana", "", T0)
    pin = new_pin("cam1", approved, "ana", "test bench", T0)
    assert (pin.device, pin.version, pin.by, pin.reason) == (
        "cam1",
        "trash-classifier/3",
        "ana",
        "test bench",
    )
