"""What an edge says about its decisions: events, state, counters, snapshots, deeplens.

``EdgeOutput`` turns a ``Decision`` into the SPEC event and sends it through the event
publisher (the on-disk outbox in production: stored durably first, sent when the broker
is reachable, in order, with the original id and timestamp), and publishes the retained
state and per-bin counters straight to the broker (they describe *now*, so after an
outage only the latest value is re-sent, never a backlog).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from whichbin.contract import (
    DEEPLENS_NAMES,
    DEEPLENS_TOPIC,
    UNSURE,
    DeepLensMessage,
    Event,
    LabelP,
    ModelRef,
    RulesRef,
    State,
    Topics,
    iso,
)
from whichbin.edge.decide import BinCounters, Decision
from whichbin.edge.homeassistant import counters_topic, snapshot_topic
from whichbin.messaging.mqtt import Publisher

logger = logging.getLogger(__name__)


def event_from_decision(d: Decision, device: str) -> Event:
    """The SPEC event payload for one decision (plus ``frames``, ``started``, ``reason``)."""
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
            # extensions: how many frames voted, when the item was first classified, why
            "frames": d.frames,
            "started": iso(d.started),
            "reason": d.reason,
        }
    )


class EdgeOutput:
    """Publishes one device's decisions (see the module docstring).

    Args:
        publisher: the MQTT client (state, counters, deeplens, snapshot images).
        topics: the device's topics.
        event_publisher: where events go (an ``SqliteOutbox``); default ``publisher``.
        snapshots: a ``SnapshotStore`` to save each decision's image in, or None.
        publish_snapshots: also publish the JPEG (retained) on ``<device>/snapshot``.
        counters_file: where the per-bin counters persist across restarts, or None.
        deeplens: also publish the recipe's ``{"object": …}`` on ``deeplens/trash/infer``.
    """

    def __init__(
        self,
        publisher: Publisher,
        topics: Topics,
        *,
        event_publisher: Publisher | None = None,
        snapshots: Any = None,
        publish_snapshots: bool = False,
        counters_file: Path | None = None,
        deeplens: bool = False,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.publisher = publisher
        self.topics = topics
        # not `or`: an empty SqliteOutbox is falsy (it has __len__)
        self.event_publisher = publisher if event_publisher is None else event_publisher
        self.snapshots = snapshots
        self.publish_snapshots = publish_snapshots
        self.counters_file = counters_file
        self.deeplens = deeplens
        self.on_event = on_event
        self.counters = _load_counters(counters_file)
        self.state: str | None = None
        self.since: datetime | None = None
        self._lock = threading.Lock()
        self._state_unsent = False
        self._counters_unsent = True

    def decision(self, d: Decision, image: np.ndarray | None = None) -> Event:
        """Send one item's event (durably), count it, save its snapshot, update the state."""
        event = event_from_decision(d, self.topics.device)
        logger.info(
            "item: %s (%s, %.2f, %s) by model %s",
            d.bin,
            d.label,
            d.confidence,
            d.decision,
            d.model_version,
        )
        payload = event.to_json()
        try:
            sent = self.event_publisher.publish(self.topics.event, payload, qos=1, retain=False)
        except Exception:
            # The outbox could not store it (disk full?): better sent now than never.
            logger.exception("event %s could not be queued; publishing directly", event.id)
            sent = self.publisher.publish(self.topics.event, payload, qos=1, retain=False)
        if not sent:
            logger.warning("event %s not sent: broker not connected", event.id)
        self.counters.add(d)
        self._save_counters()
        self.publish_counters()
        if image is not None and self.snapshots is not None:
            self._snapshot(image, event)
        self.publish_state(d.bin if d.decision != UNSURE else UNSURE, d.ts)
        if self.deeplens and d.decision != UNSURE and d.bin in DEEPLENS_NAMES:
            msg = DeepLensMessage(object=DEEPLENS_NAMES[d.bin])
            self.publisher.publish(DEEPLENS_TOPIC, msg.model_dump_json(), qos=0, retain=False)
        if self.on_event is not None:
            self.on_event(event)
        return event

    def publish_state(self, state: str, since: datetime) -> None:
        """The retained ``state`` (a bin, ``idle`` or ``unsure``)."""
        with self._lock:
            self.state, self.since = state, since
        payload = State(bin=state, since=iso(since)).to_json()
        self._state_unsent = not self.publisher.publish(
            self.topics.state, payload, qos=1, retain=True
        )

    def publish_counters(self) -> None:
        """The retained per-bin counters (``<device>/counters``)."""
        payload = json.dumps({"v": 1, **self.counters.as_dict()})
        self._counters_unsent = not self.publisher.publish(
            counters_topic(self.topics), payload, qos=1, retain=True
        )

    def republish(self) -> None:
        """After a reconnect: send the state and counters if they changed meanwhile."""
        if self._state_unsent and self.state is not None and self.since is not None:
            self.publish_state(self.state, self.since)
        if self._counters_unsent:
            self.publish_counters()

    def _snapshot(self, image: np.ndarray, event: Event) -> None:
        try:
            _, jpeg = self.snapshots.save(image, event)
        except Exception:
            logger.exception("could not save the snapshot of %s", event.id)
            return
        if self.publish_snapshots:
            self.publisher.publish(snapshot_topic(self.topics), jpeg, qos=0, retain=True)

    def _save_counters(self) -> None:
        if self.counters_file is None:
            return
        tmp = self.counters_file.with_name(self.counters_file.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.counters.as_dict()))
            os.replace(tmp, self.counters_file)
        except OSError as e:
            logger.warning("cannot save counters to %s (%s)", self.counters_file, e)


def _load_counters(path: Path | None) -> BinCounters:
    if path is None or not path.is_file():
        return BinCounters()
    try:
        data = json.loads(path.read_text())
        return BinCounters.from_dict(data if isinstance(data, dict) else {})
    except (OSError, ValueError) as e:
        logger.warning("%s: cannot read counters (%s); starting from 0", path, e)
        return BinCounters()
