"""The vote: K of N with hysteresis, a timeout, one decision per presence period; time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from whichbin.edge.decide import AGREED, LEFT, TIMEOUT, BinCounters, Decider, FramePrediction, vote

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LABEL_TO_BIN = {"trash": "landfill", "organic": "compost", "plastic": "recycling"}


def pred(trash: float, organic: float, plastic: float, threshold: float = 0.6) -> FramePrediction:
    labels = {"trash": trash, "organic": organic, "plastic": plastic}
    bins = {LABEL_TO_BIN[k]: v for k, v in labels.items()}
    return FramePrediction(bins, labels, LABEL_TO_BIN, threshold, "m/1", "ab" * 32, "test", "1")


RED = pred(0.9, 0.05, 0.05)
GREEN = pred(0.1, 0.8, 0.1)
BLUE = pred(0.1, 0.1, 0.8)


def at(i: int) -> datetime:
    return T0 + timedelta(milliseconds=200 * i)


def run(decider: Decider, frames: list[FramePrediction | None]) -> list[tuple[int, object]]:
    out = []
    for i, f in enumerate(frames):
        d = decider.feed(f, at(i))
        if d is not None:
            out.append((i, d))
    return out


def test_exactly_one_decision_per_item_once_k_of_n_agree() -> None:
    frames = [None] * 3 + [RED] * 12 + [None] * 4 + [GREEN] * 7 + [None] * 3
    decisions = run(Decider(vote_frames=5, agree_frames=3), frames)
    # K = 3 agreeing frames: the 3rd frame of each item decides it, and only once.
    assert [(i, d.bin) for i, d in decisions] == [(5, "landfill"), (21, "compost")]
    first = decisions[0][1]
    assert first.decision == "decided" and first.reason == AGREED
    assert first.frames == 3
    assert first.started == at(3) and first.ts == at(5)
    assert first.label == "trash"
    assert first.confidence == pytest.approx(0.9)
    assert first.top_k[0] == {"label": "trash", "p": pytest.approx(0.9)}
    assert (first.model_version, first.rules_name) == ("m/1", "test")


def test_k_of_n_tolerates_a_minority_of_wrong_frames() -> None:
    # red, blue, red, blue, red: red reaches 3 of the last 5 on the 5th frame.
    frames = [RED, BLUE, RED, BLUE, RED, RED]
    ((i, d),) = run(Decider(vote_frames=5, agree_frames=3), frames)
    assert i == 4 and d.bin == "landfill" and d.frames == 5
    assert d.confidence == pytest.approx((0.9 * 3 + 0.1 * 2) / 5)


def test_default_k_is_a_majority_of_n() -> None:
    assert Decider(vote_frames=5).agree_frames == 3
    assert Decider(vote_frames=4).agree_frames == 3
    assert Decider(vote_frames=1).agree_frames == 1


def test_hysteresis_keeps_the_candidate_until_another_bin_reaches_k() -> None:
    # K=2 of N=4 lets two bins qualify at once; the first to qualify stays the verdict.
    d = Decider(vote_frames=4, agree_frames=2)
    assert d.feed(RED, at(0)) is None
    decision = d.feed(RED, at(1))
    assert decision is not None and decision.bin == "landfill"
    assert d.candidate == "landfill"
    # Latched: more frames of another bin change nothing while the item is in view.
    assert all(d.feed(BLUE, at(2 + i)) is None for i in range(10))
    assert d.feed(None, at(20)) is None  # the item left: no second event
    assert not d.active and d.candidate is None


def test_flip_flopping_item_is_unsure_after_the_timeout() -> None:
    d = Decider(vote_frames=5, agree_frames=4, timeout=2.0)
    flips = [RED, BLUE, GREEN, RED, BLUE, GREEN, RED, BLUE, GREEN, RED, BLUE, GREEN, RED]
    decisions = run(d, flips)  # 200 ms per frame: the 11th frame is 2 s after the first
    ((i, decision),) = decisions
    assert i == 10
    assert decision.decision == "unsure" and decision.reason == TIMEOUT
    assert decision.frames == 11  # the vote is over everything seen


def test_tick_times_out_without_new_predictions() -> None:
    d = Decider(vote_frames=5, timeout=1.0)
    assert d.feed(RED, at(0)) is None
    assert d.tick(at(3)) is None  # 600 ms
    out = d.tick(at(5))  # 1 s
    assert out is not None and out.decision == "unsure" and out.reason == TIMEOUT
    assert d.tick(at(6)) is None


def test_an_item_leaving_before_k_agree_is_unsure_when_it_leaves() -> None:
    frames = [BLUE] * 2 + [None, None]
    decisions = run(Decider(vote_frames=5, agree_frames=3), frames)
    assert [(i, d.bin, d.frames, d.decision, d.reason) for i, d in decisions] == [
        (2, "recycling", 2, "unsure", LEFT)
    ]


def test_no_decision_for_an_empty_scene() -> None:
    assert run(Decider(), [None] * 50) == []


def test_unsure_below_the_rule_pack_threshold() -> None:
    frames = [pred(0.5, 0.3, 0.2, threshold=0.6)] * 5
    ((_, d),) = run(Decider(vote_frames=5), frames)
    assert d.decision == "unsure" and d.reason == AGREED
    assert d.bin == "landfill"  # the best guess is still reported
    # The same frames with a lower threshold decide.
    ((_, d2),) = run(Decider(vote_frames=5, threshold=0.4), frames)
    assert d2.decision == "decided"


def test_majority_vote_and_mean_confidence() -> None:
    frames = [pred(0.7, 0.2, 0.1)] * 3 + [pred(0.3, 0.6, 0.1)] * 2
    d = vote(frames, at(0), at(4))
    assert d.bin == "landfill"
    assert d.confidence == pytest.approx((0.7 * 3 + 0.3 * 2) / 5)


def test_tie_goes_to_the_larger_mean_probability() -> None:
    d = vote([pred(0.55, 0.45, 0.0), pred(0.05, 0.95, 0.0)], at(0), at(1))
    assert d.bin == "compost"


def test_reset_drops_the_open_period() -> None:
    decider = Decider(vote_frames=5)
    decider.feed(RED, at(0))
    decider.reset()
    assert decider.feed(None, at(1)) is None
    assert not decider.active


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Decider(vote_frames=3, agree_frames=4)
    with pytest.raises(ValueError):
        Decider(timeout=0)


def test_counters_per_bin_and_unsure() -> None:
    counters = BinCounters()
    red = vote([RED], at(0), at(1))
    unsure = vote([RED], at(0), at(1), unsure=True)
    assert counters.add(red) == "landfill"
    assert counters.add(unsure) == "unsure"
    counters.add(vote([GREEN], at(0), at(1)))
    assert counters.as_dict() == {
        "compost": 1,
        "landfill": 1,
        "recycling": 0,
        "unsure": 1,
        "total": 3,
    }
    again = BinCounters.from_dict({**counters.as_dict(), "bogus": "x", "glass": -1})
    assert again.as_dict() == counters.as_dict()


def test_an_item_unlike_the_training_photos_is_unsure_however_confident() -> None:
    from dataclasses import replace

    odd = [replace(RED, familiarity=0.30, min_familiarity=0.45)] * 3
    usual = [replace(RED, familiarity=0.60, min_familiarity=0.45)] * 3
    assert vote(odd, T0, at(3)).decision == "unsure"
    assert vote(odd, T0, at(3)).bin == "landfill"  # still the best guess
    assert vote(usual, T0, at(3)).decision == "decided"
    assert vote(usual[:2] + odd[:1], T0, at(3)).decision == "decided"  # mean 0.5 >= 0.45
