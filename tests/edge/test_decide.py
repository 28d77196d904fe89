"""The vote: one decision per presence period, time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from whichbin.edge.decide import Decider, FramePrediction, vote

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LABEL_TO_BIN = {"trash": "landfill", "organic": "compost", "plastic": "recycling"}


def pred(trash: float, organic: float, plastic: float, threshold: float = 0.6) -> FramePrediction:
    labels = {"trash": trash, "organic": organic, "plastic": plastic}
    bins = {LABEL_TO_BIN[k]: v for k, v in labels.items()}
    return FramePrediction(bins, labels, LABEL_TO_BIN, threshold, "m/1", "ab" * 32, "test", "1")


def at(i: int) -> datetime:
    return T0 + timedelta(milliseconds=200 * i)


def run(decider: Decider, frames: list[FramePrediction | None]) -> list[tuple[int, object]]:
    out = []
    for i, f in enumerate(frames):
        d = decider.feed(f, at(i))
        if d is not None:
            out.append((i, d))
    return out


def test_exactly_one_decision_per_item_at_vote_frames() -> None:
    red = pred(0.9, 0.05, 0.05)
    green = pred(0.1, 0.8, 0.1)
    frames = [None] * 3 + [red] * 12 + [None] * 4 + [green] * 7 + [None] * 3
    decisions = run(Decider(vote_frames=5), frames)
    assert [(i, d.bin) for i, d in decisions] == [(7, "landfill"), (23, "compost")]
    first = decisions[0][1]
    assert first.decision == "decided"
    assert first.frames == 5
    assert first.started == at(3) and first.ts == at(7)
    assert first.label == "trash"
    assert first.confidence == pytest.approx(0.9)
    assert first.top_k[0] == {"label": "trash", "p": pytest.approx(0.9)}
    assert (first.model_version, first.rules_name) == ("m/1", "test")


def test_an_item_leaving_early_is_decided_when_it_leaves() -> None:
    frames = [pred(0.1, 0.1, 0.8)] * 2 + [None, None]
    decisions = run(Decider(vote_frames=5), frames)
    assert [(i, d.bin, d.frames) for i, d in decisions] == [(2, "recycling", 2)]


def test_no_decision_for_an_empty_scene() -> None:
    assert run(Decider(), [None] * 50) == []


def test_majority_vote_and_mean_confidence() -> None:
    # 3 frames say landfill, 2 say compost; confidence is landfill's mean probability.
    frames = [pred(0.7, 0.2, 0.1)] * 3 + [pred(0.3, 0.6, 0.1)] * 2
    ((_, d),) = run(Decider(vote_frames=5), frames)
    assert d.bin == "landfill"
    assert d.confidence == pytest.approx((0.7 * 3 + 0.3 * 2) / 5)


def test_unsure_below_the_rule_pack_threshold() -> None:
    frames = [pred(0.5, 0.3, 0.2, threshold=0.6)] * 5
    ((_, d),) = run(Decider(vote_frames=5), frames)
    assert d.decision == "unsure"
    assert d.bin == "landfill"  # the best guess is still reported
    # The same frames with a lower threshold decide.
    ((_, d2),) = run(Decider(vote_frames=5, threshold=0.4), frames)
    assert d2.decision == "decided"


def test_tie_goes_to_the_larger_mean_probability() -> None:
    d = vote([pred(0.55, 0.45, 0.0), pred(0.05, 0.95, 0.0)], at(0), at(1))
    assert d.bin == "compost"


def test_reset_drops_the_open_period() -> None:
    decider = Decider(vote_frames=5)
    decider.feed(pred(0.9, 0.05, 0.05), at(0))
    decider.reset()
    assert decider.feed(None, at(1)) is None
    assert not decider.active
