"""The edge loop: source → presence → classify → decide → output.

The runner owns no I/O of its own: it is handed a ``FrameSource`` (in production a
``ThreadedSource``, so capture overlaps classification), a ``ModelProvider`` (the
deployment follower, or a fixed model), an ``EdgeOutput`` (or a bare ``Publisher``) and
a clock, so a test can drive it frame by frame.

Classification runs only on still frames while an item is present and undecided: an
empty scene costs a downscale and a subtraction, a hand moving in is not classified,
and once an item's decision is out no more inference is spent on it (on a Pi this is
the difference between idling and a hot CPU). The classifier sees the item: the
changed region presence detection found, cut out of the full frame with a margin and
squared up (``PresenceConfig.crop``; several crops, when configured, vote by averaging
their probabilities); with cropping off, the region of interest. The model is read from
the provider once per frame, so a deployment swaps it between frames.

A frame marked ``whole_item`` (``--stills``: a folder of photos, one item each) skips
presence detection: it is classified whole and decided at once, one event per photo.
A scene whose empty background is never learned (the frames never hold still, e.g. a
folder of unrelated photos played as a camera) can detect nothing; the runner warns once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from whichbin.contract import IDLE, UNSURE, utc_now
from whichbin.edge.decide import Decider, Decision, FramePrediction, vote
from whichbin.edge.liveview import Overlay
from whichbin.edge.output import EdgeOutput, event_from_decision
from whichbin.edge.presence import PresenceDetector
from whichbin.edge.runstats import RunStats
from whichbin.edge.sources import Frame, FrameSource
from whichbin.messaging.mqtt import Publisher
from whichbin.rules import aggregate_bins

logger = logging.getLogger(__name__)

STILL = "still"  # an event's ``reason`` for a photo decided on its own (``--stills``)
NO_BACKGROUND_WARN_FRAMES = 50  # frames without a learned empty scene before the warning

__all__ = [
    "ActiveModel",
    "EdgeRunner",
    "ModelProvider",
    "RunStats",
    "StaticModel",
    "event_from_decision",
    "frame_prediction",
]


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
    """A ModelProvider for ``--model PATH``: always the same model (``replace`` swaps it)."""

    def __init__(self, model: ActiveModel) -> None:
        self.model = model

    def current(self) -> ActiveModel | None:
        return self.model

    def replace(self, model: ActiveModel) -> None:
        self.model = model


def mean_probs(predictions: list[Any]) -> dict[str, float]:
    """Label probabilities averaged over several predictions (crops of one item)."""
    total: dict[str, float] = {}
    for p in predictions:
        for label, prob in p.probs.items():
            total[label] = total.get(label, 0.0) + float(prob) / len(predictions)
    return total


def frame_prediction(model: ActiveModel, prediction: Any) -> FramePrediction:
    """A classifier's Prediction (rules.Prediction), or a list of them to average (several
    crops of one frame) → the decider's input."""
    clf = model.classifier
    probs = mean_probs(prediction) if isinstance(prediction, list) else dict(prediction.probs)
    crops = prediction if isinstance(prediction, list) else [prediction]
    fams = [p.familiarity for p in crops if getattr(p, "familiarity", None) is not None]
    return FramePrediction(
        bin_probs=aggregate_bins(probs, clf.label_to_bin),
        label_probs=probs,
        label_to_bin=dict(clf.label_to_bin),
        threshold=float(clf.threshold),
        model_version=model.version,
        model_sha256=model.sha256,
        rules_name=str(clf.rules_ref.get("name", "unknown")),
        rules_version=str(clf.rules_ref.get("version", "1")),
        familiarity=sum(fams) / len(fams) if fams else None,
        min_familiarity=getattr(clf, "min_familiarity", None),
    )


class EdgeRunner:
    """Runs the frame loop and publishes events and state (availability is the service's).

    Args:
        source: where frames come from.
        models: gives the model for each frame (a DeploymentFollower or StaticModel).
        publisher: an ``EdgeOutput``, or a bare Publisher (events and state go straight
            to it, QoS 1).
        device_id: the ``<device>`` in topic names and events.
        prefix: topic prefix.
        clock: returns the current UTC datetime (event ``ts``, state ``since``, timeouts).
        presence: the change detector (default settings when None).
        decider: the vote (default settings when None).
        deeplens: with a bare Publisher, also publish the recipe's ``deeplens/trash/infer``.
        max_frames: stop after this many frames.
        on_frame: called with each frame and its overlay (the live view).
        classify_all: classify every frame, also the empty scene (benchmarks: worst case).
    """

    def __init__(
        self,
        source: FrameSource,
        models: ModelProvider,
        publisher: EdgeOutput | Publisher,
        device_id: str,
        *,
        prefix: str = "whichbin",
        clock: Callable[[], datetime] = utc_now,
        presence: PresenceDetector | None = None,
        decider: Decider | None = None,
        deeplens: bool = False,
        max_frames: int | None = None,
        on_frame: Callable[[np.ndarray, Overlay], None] | None = None,
        classify_all: bool = False,
    ) -> None:
        from whichbin.contract import Topics

        self.source = source
        self.models = models
        self.device_id = device_id
        self.output = (
            publisher
            if isinstance(publisher, EdgeOutput)
            else EdgeOutput(publisher, Topics(device_id, prefix), deeplens=deeplens)
        )
        self.publisher = self.output.publisher
        self.topics = self.output.topics
        self.clock = clock
        self.presence = presence or PresenceDetector()
        self.decider = decider or Decider()
        self.max_frames = max_frames
        self.on_frame = on_frame
        self.classify_all = classify_all
        self.stats = RunStats()
        self.stop_event = threading.Event()
        self._paused = threading.Event()
        self._relearn = threading.Event()
        self._waiting_logged = False
        self._unlearned = 0  # frames seen without a learned empty scene
        self._unlearned_logged = False
        self._ever_learned = False
        self._item_image: np.ndarray | None = None  # the latest classified view of the item
        self._caption = ""
        self._fps = 0.0
        self._fps_mark = (time.monotonic(), 0)

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

    def relearn(self) -> None:
        """Forget the background and learn the empty scene again (next frame)."""
        self._relearn.set()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    @property
    def state(self) -> str | None:
        return self.output.state

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> RunStats:
        """Read frames until the source ends, ``max_frames`` is reached or ``stop()``."""
        self.output.publish_state(IDLE, self.clock())
        self.output.publish_counters()
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
        self.stats.dropped = int(getattr(self.source, "dropped", 0))
        return self.stats

    def step(self, frame: Frame) -> Decision | None:
        """Process one frame; returns the decision made on it, if any."""
        self.stats.frames += 1
        now = self.clock()
        if self._relearn.is_set():
            self._relearn.clear()
            self.presence.reset()
            self.decider.reset()
            logger.info("re-learning the empty scene")
        if frame.whole_item:
            return self._step_still(frame, now)
        seen = self.presence.update(frame.image)
        self._check_background(seen.learning)
        decision: Decision | None = None
        if self.paused:
            self.decider.reset()  # a paused edge says nothing about the item in view
        elif self.classify_all or (seen.present and seen.still and self.decider.wants_more):
            prediction = self._classify(frame)
            if prediction is not None and seen.present:
                decision = self.decider.feed(prediction, now)
            elif not seen.present:
                decision = self.decider.feed(None, now)
        elif seen.present:
            decision = self.decider.tick(now)
        else:
            decision = self.decider.feed(None, now)
        if decision is not None:
            self._publish(decision, frame)
        if seen.left and self.output.state != IDLE:
            self.output.publish_state(IDLE, now)
        self._frame_done(frame, seen.present)
        return decision

    def _step_still(self, frame: Frame, now: datetime) -> Decision | None:
        """A photo that is one item: classified whole, decided at once (one event)."""
        decision: Decision | None = None
        if not self.paused:
            prediction = self._classify(frame, [frame.image])
            if prediction is not None:
                d = self.decider
                decision = vote([prediction], now, now, d.threshold, d.k, reason=STILL)
                self._publish(decision, frame)
        self._frame_done(frame, decision is not None)
        return decision

    def _frame_done(self, frame: Frame, present: bool) -> None:
        done = time.monotonic()
        if self.stats.first_frame_at is None:
            self.stats.first_frame_at = frame.captured
        self.stats.last_frame_at = done
        self.stats.frame_ms.append((done - frame.captured) * 1000)
        if self.on_frame is not None:
            self.on_frame(frame.image, self._overlay(present))

    def _check_background(self, learning: bool) -> None:
        """Warn once when no empty scene has been learned for a while: nothing can be seen."""
        if not learning:
            self._unlearned = 0
            self._ever_learned = True
            return
        self._unlearned += 1
        if self._unlearned >= NO_BACKGROUND_WARN_FRAMES:
            self._warn_no_background()

    def _warn_no_background(self) -> None:
        if self._unlearned_logged:
            return
        self._unlearned_logged = True
        logger.warning(
            "no empty scene learned yet after %d frames: items are detected against the "
            "empty scene, which must hold still for %d frames first; show the camera the "
            "empty scene, or use --stills to classify a folder of photos one event each",
            self._unlearned,
            self.presence.config.learn_frames,
        )

    def finish(self) -> None:
        """End of the run: decide an item still in view (unless stopped), and go idle."""
        now = self.clock()
        if self._unlearned and not self._ever_learned:
            self._warn_no_background()  # a short run that never saw the empty scene
        try:
            if self.stop_event.is_set():
                self.decider.reset()  # stopped mid-item: no verdict on half a look
            elif (decision := self.decider.feed(None, now)) is not None:
                self._publish(decision, None)
            if self.output.state != IDLE:
                self.output.publish_state(IDLE, now)
        except Exception:
            logger.exception("could not publish the final decision")

    def republish_state(self) -> None:
        """After a reconnect: send the state and counters if they changed meanwhile."""
        self.output.republish()

    # -- internals --------------------------------------------------------------------
    def _classify(
        self, frame: Frame, views: list[np.ndarray] | None = None
    ) -> FramePrediction | None:
        """Classify the item in ``frame`` (its crops, or ``views`` when given)."""
        model = self.models.current()
        if model is None:
            if not self._waiting_logged:
                logger.warning(
                    "an item is in view but there is no model yet: waiting for a deployment"
                )
                self._waiting_logged = True
            return None
        if views is None:
            views = self.presence.item_views(frame.image)
        predictions = model.classifier.predict(views)
        self.stats.classified += 1
        self._item_image = views[0]
        return frame_prediction(model, predictions if len(predictions) > 1 else predictions[0])

    def _publish(self, d: Decision, frame: Frame | None) -> None:
        event = self.output.decision(d, self._item_image)
        self._item_image = None
        self.stats.events += 1
        key = d.bin if d.decision != UNSURE else UNSURE
        self.stats.bins.append(key)
        self.stats.counts[key] = self.stats.counts.get(key, 0) + 1
        self.stats.event_ids.append(event.id)
        if frame is not None:
            self.stats.event_ms.append((time.monotonic() - frame.captured) * 1000)
            self.stats.event_captured.append((event.id, frame.captured))
        self._caption = f"{d.bin}: {d.label} {d.confidence:.2f} ({d.decision})"

    def _overlay(self, present: bool) -> Overlay:
        t0, n0 = self._fps_mark
        t = time.monotonic()
        if t - t0 >= 1.0:
            self._fps = (self.stats.frames - n0) / (t - t0)
            self._fps_mark = (t, self.stats.frames)
        return Overlay(
            state=self.output.state or IDLE,
            caption=self._caption,
            present=present,
            paused=self.paused,
            roi=self.presence.config.roi,
            fps=self._fps,
        )
