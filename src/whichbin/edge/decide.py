"""From per-frame predictions to one decision per item. Pure: time is passed in.

While an item is present the runner feeds each still frame's prediction; when the scene
is empty it feeds ``None``. The decider emits exactly ONE decision per presence period:

* **K of N**: as soon as one bin has ``agree_frames`` (K) of the last ``vote_frames`` (N)
  predictions, the item is decided on that window. The confidence is the mean calibrated
  probability of that bin over the window; below the rule pack's threshold the decision
  is ``unsure`` (the bin is still reported, as ``classify`` does).
* **Hysteresis**: the leading bin (the *candidate*) changes only when another bin reaches
  K votes, not when it merely outnumbers the candidate for a frame; and once an item is
  decided the verdict is latched until the scene is empty again (one event per item, no
  flip-flopping while it is in view).
* **Timeout**: an item that never reaches K agreeing frames within ``timeout`` seconds
  of its first prediction is reported as ``unsure`` (vote over everything seen).
* **Early exit**: an item that leaves before K frames agreed is reported when it leaves,
  as ``unsure`` (what was seen is kept for review, not counted as a verdict).

``BinCounters`` counts the decisions per bin (``unsure`` separately).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from whichbin.config.edge import DecisionConfig
from whichbin.contract import BINS, DECIDED, UNSURE
from whichbin.rules import unfamiliar

# Why a decision was made (the event's ``reason`` extension field).
AGREED = "agreed"  # K of N frames agreed
TIMEOUT = "timeout"  # no agreement within the timeout
LEFT = "left"  # the item left before K frames agreed
VOTE = "vote"  # a plain vote (``vote()`` called directly)


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
    familiarity: float | None = None  # how like the model's training photos (openset.py)
    min_familiarity: float | None = None  # below it the item is unsure, however confident

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
    reason: str = VOTE  # agreed, timeout, left or vote


def vote(
    predictions: list[FramePrediction],
    started: datetime,
    ts: datetime,
    threshold: float | None = None,
    k: int = 3,
    *,
    bin: str | None = None,  # noqa: A002 - the SPEC's word
    reason: str = VOTE,
    unsure: bool = False,
) -> Decision:
    """Vote over ``predictions`` (not empty), seen from ``started`` to ``ts``.

    The bin is ``bin`` when given, else the majority (ties go to the larger mean
    probability). ``unsure`` forces the decision to ``unsure`` whatever the confidence.
    """
    if not predictions:
        raise ValueError("vote needs at least one prediction")
    counts = Counter(p.bin for p in predictions)
    bins = {b for p in predictions for b in p.bin_probs}

    def mean_bin(b: str) -> float:
        return sum(p.bin_probs.get(b, 0.0) for p in predictions) / len(predictions)

    best_bin = bin or max(bins, key=lambda b: (counts.get(b, 0), mean_bin(b)))
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
    fams = [p.familiarity for p in predictions if p.familiarity is not None]
    strange = unfamiliar(sum(fams) / len(fams) if fams else None, last.min_familiarity)
    return Decision(
        bin=best_bin,
        label=best_label,
        confidence=round(confidence, 6),
        decision=DECIDED if confidence >= limit and not unsure and not strange else UNSURE,
        top_k=[{"label": lab, "p": round(p, 6)} for lab, p in ranked],
        frames=len(predictions),
        started=started,
        ts=ts,
        model_version=last.model_version,
        model_sha256=last.model_sha256,
        rules_name=last.rules_name,
        rules_version=last.rules_version,
        reason=reason,
    )


@dataclass
class Decider:
    """Collects one presence period's predictions and emits one decision for it.

    Args:
        vote_frames: N, the window of latest predictions that vote.
        agree_frames: K, votes one bin needs in the window to decide (default: a
            majority of N, ``N // 2 + 1``).
        timeout: seconds from the item's first prediction after which it is ``unsure``.
        threshold: overrides the per-frame rule pack threshold when set.
        k: length of ``top_k``.
    """

    vote_frames: int = 5
    agree_frames: int | None = None
    timeout: float = 10.0
    threshold: float | None = None
    k: int = 3
    _window: deque[FramePrediction] = field(init=False, repr=False)
    _votes: list[FramePrediction] = field(default_factory=list, init=False, repr=False)
    _started: datetime | None = field(default=None, init=False)
    _decided: bool = field(default=False, init=False)
    _candidate: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.vote_frames < 1:
            raise ValueError("vote_frames must be at least 1")
        if self.agree_frames is None:
            self.agree_frames = self.vote_frames // 2 + 1
        if not 1 <= self.agree_frames <= self.vote_frames:
            raise ValueError("agree_frames must be between 1 and vote_frames")
        if self.timeout <= 0:
            raise ValueError("timeout must be above 0 seconds")
        self._window = deque(maxlen=self.vote_frames)

    @classmethod
    def from_config(cls, cfg: DecisionConfig) -> Decider:
        """A decider for the ``edge.decision`` section."""
        return cls(
            vote_frames=cfg.vote_frames,
            agree_frames=cfg.agree_frames,
            timeout=cfg.timeout,
            threshold=cfg.threshold,
            k=cfg.top_k,
        )

    @property
    def active(self) -> bool:
        """An item's presence period is open."""
        return self._started is not None

    @property
    def wants_more(self) -> bool:
        """The current (or next) item still needs predictions."""
        return not self._decided

    @property
    def candidate(self) -> str | None:
        """The bin that last reached K votes in the window (the hysteresis state)."""
        return self._candidate

    def feed(self, prediction: FramePrediction | None, now: datetime) -> Decision | None:
        """One frame: its prediction while an item is present, ``None`` when the scene is empty.

        Returns the item's decision on the frame it is made, else None.
        """
        if prediction is None:
            out = None
            if self._votes and not self._decided:
                out = self._decide_all(now, LEFT, unsure=not self._agreed_overall())
            self.reset()
            return out
        if self._started is None:
            self._started = now
        if self._decided:
            return None
        self._votes.append(prediction)
        self._window.append(prediction)
        counts = Counter(p.bin for p in self._window)
        agree = self.agree_frames or 1
        if self._candidate is None or counts.get(self._candidate, 0) < agree:
            reached = [b for b, n in counts.items() if n >= agree]
            if reached:
                self._candidate = max(reached, key=lambda b: (counts[b], self._mean(b)))
        if self._candidate is not None and counts.get(self._candidate, 0) >= agree:
            self._decided = True
            return vote(
                list(self._window),
                self._started,
                now,
                self.threshold,
                self.k,
                bin=self._candidate,
                reason=AGREED,
            )
        return self.tick(now)

    def tick(self, now: datetime) -> Decision | None:
        """A frame without a prediction while the item is in view: check the timeout."""
        if self._decided or self._started is None or not self._votes:
            return None
        if (now - self._started).total_seconds() >= self.timeout:
            return self._decide_all(now, TIMEOUT, unsure=True)
        return None

    def reset(self) -> None:
        """Drop the open period without deciding."""
        self._votes, self._started, self._decided, self._candidate = [], None, False, None
        self._window.clear()

    def _mean(self, b: str) -> float:
        return sum(p.bin_probs.get(b, 0.0) for p in self._window) / max(1, len(self._window))

    def _agreed_overall(self) -> bool:
        counts = Counter(p.bin for p in self._votes)
        return max(counts.values(), default=0) >= (self.agree_frames or 1)

    def _decide_all(self, now: datetime, reason: str, unsure: bool) -> Decision:
        self._decided = True
        return vote(
            self._votes,
            self._started or now,
            now,
            self.threshold,
            self.k,
            reason=reason,
            unsure=unsure,
        )


@dataclass
class BinCounters:
    """Items counted per bin; an ``unsure`` item counts as ``unsure``, not in its bin."""

    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for b in (*BINS, UNSURE):
            self.counts.setdefault(b, 0)

    def add(self, decision: Decision) -> str:
        """Count one decision; returns the key it was counted under."""
        key = decision.bin if decision.decision == DECIDED else UNSURE
        self.counts[key] = self.counts.get(key, 0) + 1
        return key

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        """``{compost, landfill, recycling, unsure, …, total}``."""
        return {**self.counts, "total": self.total}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> BinCounters:
        """Counts from ``as_dict()`` output (unknown or malformed values are ignored)."""
        counts = {
            str(k): int(v)
            for k, v in data.items()
            if k != "total" and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        }
        return cls(counts)
