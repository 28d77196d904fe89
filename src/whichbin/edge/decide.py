"""From per-frame predictions to one decision per item. Pure: time is passed in.

While an item is present the runner feeds each frame's prediction; when the scene is
empty it feeds ``None``. The decider collects the predictions of one presence period,
and emits exactly ONE decision for it: as soon as ``vote_frames`` predictions have been
seen, or, if the item leaves earlier, when it leaves. The bin is the majority vote over
the frames' bins (ties go to the larger mean probability); the confidence is the mean
calibrated probability of that bin over the voting frames; below the rule pack's
threshold the decision is ``unsure`` (the bin is still reported, as ``classify`` does).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

DECIDED = "decided"
UNSURE = "unsure"


@dataclass(frozen=True)
class FramePrediction:
    """One frame's calibrated answer, with the model and rules that gave it."""

    bin_probs: Mapping[str, float]  # bin → summed label probability
    label_probs: Mapping[str, float]  # label → probability
    label_to_bin: Mapping[str, str]
    threshold: float  # the rule pack's unsure threshold
    model_version: str = "unknown"
    model_sha256: str = ""
    rules_name: str = "unknown"
    rules_version: str = "1"

    @property
    def bin(self) -> str:
        return max(self.bin_probs, key=lambda b: self.bin_probs[b])


@dataclass(frozen=True)
class Decision:
    """One item's verdict (what becomes an MQTT event)."""

    bin: str
    label: str
    confidence: float
    decision: str  # "decided" or "unsure"
    top_k: list[dict[str, float | str]]
    frames: int  # predictions that voted
    started: datetime  # first prediction of the item
    ts: datetime  # when the decision was made
    model_version: str
    model_sha256: str
    rules_name: str
    rules_version: str


def vote(
    predictions: list[FramePrediction],
    started: datetime,
    ts: datetime,
    threshold: float | None = None,
    k: int = 3,
) -> Decision:
    """Majority vote over ``predictions`` (not empty), seen from ``started`` to ``ts``."""
    if not predictions:
        raise ValueError("vote needs at least one prediction")
    counts = Counter(p.bin for p in predictions)
    bins = {b for p in predictions for b in p.bin_probs}

    def mean_bin(b: str) -> float:
        return sum(p.bin_probs.get(b, 0.0) for p in predictions) / len(predictions)

    best_bin = max(bins, key=lambda b: (counts.get(b, 0), mean_bin(b)))
    confidence = mean_bin(best_bin)
    labels: dict[str, float] = {}
    for p in predictions:
        for label, prob in p.label_probs.items():
            labels[label] = labels.get(label, 0.0) + prob / len(predictions)
    last = predictions[-1]
    to_bin = {lab: b for p in predictions for lab, b in p.label_to_bin.items()}
    in_bin = [lab for lab in labels if to_bin.get(lab) == best_bin] or list(labels)
    best_label = max(in_bin, key=lambda lab: labels[lab])
    ranked = sorted(labels.items(), key=lambda kv: kv[1], reverse=True)[:k]
    limit = last.threshold if threshold is None else threshold
    return Decision(
        bin=best_bin,
        label=best_label,
        confidence=round(confidence, 6),
        decision=DECIDED if confidence >= limit else UNSURE,
        top_k=[{"label": lab, "p": round(p, 6)} for lab, p in ranked],
        frames=len(predictions),
        started=started,
        ts=ts,
        model_version=last.model_version,
        model_sha256=last.model_sha256,
        rules_name=last.rules_name,
        rules_version=last.rules_version,
    )


@dataclass
class Decider:
    """Collects one presence period's predictions and emits one decision for it.

    Args:
        vote_frames: predictions to collect before deciding (an item that leaves
            earlier is decided on what was seen).
        threshold: overrides the per-frame rule pack threshold when set.
        k: length of ``top_k``.
    """

    vote_frames: int = 5
    threshold: float | None = None
    k: int = 3
    _votes: list[FramePrediction] = field(default_factory=list, init=False)
    _started: datetime | None = field(default=None, init=False)
    _decided: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.vote_frames < 1:
            raise ValueError("vote_frames must be at least 1")

    @property
    def active(self) -> bool:
        """An item's presence period is open."""
        return self._started is not None

    @property
    def wants_more(self) -> bool:
        """The current (or next) item still needs predictions."""
        return not self._decided

    def feed(self, prediction: FramePrediction | None, now: datetime) -> Decision | None:
        """One frame: its prediction while an item is present, ``None`` when the scene is empty.

        Returns the item's decision on the frame it is made, else None.
        """
        if prediction is None:
            out = self._decide(now) if self._votes and not self._decided else None
            self._votes, self._started, self._decided = [], None, False
            return out
        if self._started is None:
            self._started = now
        if self._decided:
            return None
        self._votes.append(prediction)
        if len(self._votes) >= self.vote_frames:
            return self._decide(now)
        return None

    def reset(self) -> None:
        """Drop the open period without deciding."""
        self._votes, self._started, self._decided = [], None, False

    def _decide(self, now: datetime) -> Decision:
        self._decided = True
        return vote(self._votes, self._started or now, now, self.threshold, self.k)
