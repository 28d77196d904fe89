"""The edge loop: source → presence → classify → decide → publish.

The runner owns no I/O of its own: it is handed a ``FrameSource``, a ``ModelProvider``
(the deployment follower, or a fixed model), a ``Publisher`` and a clock, so a test can
drive it frame by frame.

Classification runs only while an item is present and undecided: an empty scene costs a
downscale and a subtraction, and once an item's decision is out no more inference is
spent on it (on a Pi this is the difference between idling and a hot CPU). The model is
read from the provider once per frame, so a deployment swaps it between frames.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from whichbin.contract import (
    DEEPLENS_TOPIC,
    DeepLensMessage,
    Event,
    LabelP,
    ModelRef,
    RulesRef,
    State,
    Topics,
    iso,
    utc_now,
)
from whichbin.edge.decide import UNSURE, Decider, Decision, FramePrediction
from whichbin.edge.presence import PresenceDetector
from whichbin.edge.sources import Frame, FrameSource
from whichbin.messaging.mqtt import Publisher
from whichbin.rules import DEEPLENS_NAMES, aggregate_bins

logger = logging.getLogger(__name__)

IDLE = "idle"


class Classifier(Protocol):
    """What the runner needs from a classifier (OnnxClassifier satisfies it)."""

    label_to_bin: dict[str, str]
    threshold: float
    rules_ref: dict[str, str]

    def predict(self, images: list, k: int = 3) -> list[Any]: ...


@dataclass(frozen=True)
class ActiveModel:
    """A loaded classifier and the identity it is reported under in events."""

    classifier: Classifier
    version: str
    sha256: str

    @classmethod
    def from_classifier(cls, classifier: Any, version: str | None = None) -> ActiveModel:
        """Wrap an OnnxClassifier; the version defaults to the bundle's ``whichbin.version``."""
        return cls(classifier, version or classifier.version, classifier.sha256)


class ModelProvider(Protocol):
    def current(self) -> ActiveModel | None:
        """The model to use for the next frame, or None while there is none yet."""
        ...


class StaticModel:
    """A ModelProvider for ``--model PATH``: always the same model."""

    def __init__(self, model: ActiveModel) -> None:
        self.model = model

    def current(self) -> ActiveModel | None:
        return self.model


@dataclass
class RunStats:
    """What a run did (the CLI prints it at exit)."""

    frames: int = 0
    classified: int = 0
    events: int = 0
    errors: int = 0
    bins: deque[str] = field(default_factory=lambda: deque(maxlen=10_000))  # the latest items' bins

    def as_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "classified": self.classified,
            "events": self.events,
            "errors": self.errors,
            "bins": list(self.bins),
        }


def frame_prediction(model: ActiveModel, prediction: Any) -> FramePrediction:
    """A classifier's Prediction (rules.Prediction) → the decider's input."""
    clf = model.classifier
    return FramePrediction(
        bin_probs=aggregate_bins(prediction.probs, clf.label_to_bin),
        label_probs=dict(prediction.probs),
        label_to_bin=dict(clf.label_to_bin),
        threshold=float(clf.threshold),
        model_version=model.version,
        model_sha256=model.sha256,
        rules_name=str(clf.rules_ref.get("name", "unknown")),
        rules_version=str(clf.rules_ref.get("version", "1")),
    )


def event_from_decision(d: Decision, device: str) -> Event:
    """The SPEC event payload for one decision (plus ``frames`` and ``started``)."""
    return Event.model_validate(
        {
            "ts": iso(d.ts),
            "device": device,
            "bin": d.bin,
            "label": d.label,
            "confidence": d.confidence,
            "decision": d.decision,
            "top_k": [LabelP(label=str(t["label"]), p=float(t["p"])) for t in d.top_k],
            "model": ModelRef(version=d.model_version, sha256=d.model_sha256),
            "rules": RulesRef(name=d.rules_name, version=d.rules_version),
            # extensions: how many frames voted, and when the item was first classified
            "frames": d.frames,
            "started": iso(d.started),
        }
    )


class EdgeRunner:
    """Runs the frame loop and publishes events and state (availability is the service's).

    Args:
        source: where frames come from.
        models: gives the model for each frame (a DeploymentFollower or StaticModel).
        publisher: MQTT (or any Publisher); events and state go out with QoS 1.
        device_id: the ``<device>`` in topic names and events.
        prefix: topic prefix.
        clock: returns the current UTC datetime (event ``ts``, state ``since``).
        presence: the change detector (default settings when None).
        decider: the vote (default settings when None).
        deeplens: also publish the recipe's ``{"object": …}`` to ``deeplens/trash/infer``.
        max_frames: stop after this many frames.
    """

    def __init__(
        self,
        source: FrameSource,
        models: ModelProvider,
        publisher: Publisher,
        device_id: str,
        *,
        prefix: str = "whichbin",
        clock: Callable[[], datetime] = utc_now,
        presence: PresenceDetector | None = None,
        decider: Decider | None = None,
        deeplens: bool = False,
        max_frames: int | None = None,
    ) -> None:
        self.source = source
        self.models = models
        self.publisher = publisher
        self.device_id = device_id
        self.topics = Topics(device_id, prefix)
        self.clock = clock
        self.presence = presence or PresenceDetector()
        self.decider = decider or Decider()
        self.deeplens = deeplens
        self.max_frames = max_frames
        self.stats = RunStats()
        self.state: str | None = None
        self.since: datetime | None = None
        self._state_unsent = False
        self.stop_event = threading.Event()
        self._paused = threading.Event()
        self._waiting_logged = False

    # -- control (thread-safe) ------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to end after the current frame."""
        self.stop_event.set()
        self.source.close()

    def pause(self) -> None:
        """Stop classifying (frames are still read, so the background stays fresh)."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> RunStats:
        """Read frames until the source ends, ``max_frames`` is reached or ``stop()``."""
        self.publish_state(IDLE, self.clock())
        consecutive_errors = 0
        while not self.stop_event.is_set():
            if self.max_frames is not None and self.stats.frames >= self.max_frames:
                logger.info("stopping after %d frames (--max-frames)", self.stats.frames)
                break
            try:
                frame = self.source.read()
                if frame is None:
                    if not self.stop_event.is_set():
                        logger.info("source ended after %d frames", self.stats.frames)
                    break
                self.step(frame)
                consecutive_errors = 0
            except Exception:
                # The loop boundary: one bad frame or a flaky broker must not stop the edge.
                logger.exception("frame %d failed; carrying on", self.stats.frames)
                self.stats.errors += 1
                consecutive_errors += 1
                self.stop_event.wait(min(0.05 * consecutive_errors, 2.0))
        self.finish()
        return self.stats

    def step(self, frame: Frame) -> Decision | None:
        """Process one frame; returns the decision made on it, if any."""
        self.stats.frames += 1
        now = self.clock()
        seen = self.presence.update(frame.image)
        decision: Decision | None = None
        if self.paused:
            self.decider.reset()  # a paused edge says nothing about the item in view
        elif seen.present:
            if self.decider.wants_more:
                model = self.models.current()
                if model is None:
                    self._log_waiting()
                else:
                    prediction = model.classifier.predict([frame.image])[0]
                    self.stats.classified += 1
                    decision = self.decider.feed(frame_prediction(model, prediction), now)
        else:
            decision = self.decider.feed(None, now)
        if decision is not None:
            self.publish_decision(decision)
        if seen.left and self.state != IDLE:
            self.publish_state(IDLE, now)
        return decision

    def finish(self) -> None:
        """End of the run: decide an item still in view (unless stopped), and go idle."""
        now = self.clock()
        try:
            if self.stop_event.is_set():
                self.decider.reset()  # stopped mid-item: no verdict on half a look
            elif (decision := self.decider.feed(None, now)) is not None:
                self.publish_decision(decision)
            if self.state != IDLE:
                self.publish_state(IDLE, now)
        except Exception:
            logger.exception("could not publish the final decision")

    # -- output -----------------------------------------------------------------------
    def publish_decision(self, d: Decision) -> None:
        event = event_from_decision(d, self.device_id)
        logger.info(
            "item: %s (%s, %.2f, %s) by model %s",
            d.bin,
            d.label,
            d.confidence,
            d.decision,
            d.model_version,
        )
        if not self.publisher.publish(self.topics.event, event.to_json(), qos=1, retain=False):
            logger.warning("event %s not sent: broker not connected", event.id)
        self.stats.events += 1
        self.stats.bins.append(d.bin if d.decision != UNSURE else UNSURE)
        self.publish_state(d.bin if d.decision != UNSURE else UNSURE, d.ts)
        if self.deeplens and d.decision != UNSURE and d.bin in DEEPLENS_NAMES:
            msg = DeepLensMessage(object=DEEPLENS_NAMES[d.bin])  # type: ignore[arg-type]
            self.publisher.publish(DEEPLENS_TOPIC, msg.model_dump_json(), qos=0, retain=False)

    def publish_state(self, state: str, since: datetime) -> None:
        self.state, self.since = state, since
        payload = State(bin=state, since=iso(since)).to_json()
        self._state_unsent = not self.publisher.publish(
            self.topics.state, payload, qos=1, retain=True
        )

    def republish_state(self) -> None:
        """After a reconnect: send the state if it changed while the broker was away."""
        if self._state_unsent and self.state is not None and self.since is not None:
            self.publish_state(self.state, self.since)

    def _log_waiting(self) -> None:
        if not self._waiting_logged:
            logger.warning("an item is in view but there is no model yet: waiting for a deployment")
            self._waiting_logged = True
