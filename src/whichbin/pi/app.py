"""The display's state machine: events, state, connection and time → what the LEDs show.

Pure apart from calling ``display.show`` on an injected :class:`Display`: no MQTT, no
clock. Time is passed in (``now``, seconds on a monotonic clock; ``wall_now`` an aware
datetime where payload timestamps matter), so tests drive it with plain numbers.
:mod:`whichbin.pi.runner` connects it to a broker.

Rules (SPEC "Display"):

* a decided event shows its bin's icon for ``hold`` seconds, then the idle ``?``;
* an ``unsure`` event (or a bin the display has no icon for) shows ``?`` at once;
* while the MQTT connection is down the disconnected X is shown, whatever else holds;
* the retained ``state`` message gives the initial picture, until the first event
  arrives; after that only events change the picture (a later ``state`` update never
  cuts an icon's hold short);
* a joystick press (left = compost, right = recycling, down = landfill) corrects the
  last event: it returns a :class:`~whichbin.contract.Correction` to publish and shows
  the corrected bin for ``hold`` seconds.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from whichbin.contract import BINS, DECIDED, DEEPLENS_BINS, IDLE, UNSURE, Correction, iso
from whichbin.pi.displays import Display, StickEvent
from whichbin.pi.render import DISCONNECTED, ROTATIONS, Pixels, render

logger = logging.getLogger(__name__)

JOYSTICK_BINS = {"left": "compost", "right": "recycling", "down": "landfill"}


def joystick_bin(direction: str, action: str = "pressed") -> str | None:
    """The bin a joystick press means, or None (up, middle, releases and holds)."""
    if action != "pressed":
        return None
    return JOYSTICK_BINS.get(direction)


def _as_mapping(payload: Mapping[str, Any] | bytes | str) -> dict[str, Any] | None:
    if isinstance(payload, Mapping):
        return dict(payload)
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else None


class DisplayApp:
    """What the LED matrix shows, driven by events and ``tick(now)``. Thread-safe.

    Args:
        display: where frames go (any :class:`Display`); None keeps them only in
            ``frame``.
        hold: seconds a bin's icon stays up before the idle ``?``.
        rotation: 0/90/180/270, clockwise (as ``SenseHat.set_rotation``).
        brightness: 0..1, scales every channel.
    """

    def __init__(
        self,
        display: Display | None = None,
        hold: float = 3.0,
        rotation: int = 0,
        brightness: float = 1.0,
    ) -> None:
        if hold <= 0:
            raise ValueError(f"hold must be positive, not {hold}")
        if rotation not in ROTATIONS:
            raise ValueError(f"rotation must be one of {ROTATIONS}, not {rotation}")
        if not 0.0 <= brightness <= 1.0:
            raise ValueError(f"brightness must be between 0 and 1, not {brightness}")
        self.display = display
        self.hold = hold
        self.rotation = rotation
        self.brightness = brightness
        self.connected = False
        self.last_event_id: str | None = None
        self.frame: Pixels | None = None  # the last frame handed to the display
        self._icon = IDLE
        self._until: float | None = None
        self._seen_event = False
        self._lock = threading.RLock()

    # -- what to show -------------------------------------------------------------
    def icon_at(self, now: float) -> str:
        """The icon name for time ``now``: a bin, ``unsure``, ``idle`` or ``disconnected``."""
        with self._lock:
            if not self.connected:
                return DISCONNECTED
            if self._until is not None and now < self._until:
                return self._icon
            return IDLE

    def tick(self, now: float) -> str:
        """Show the picture for ``now`` if it differs from the one up; returns the icon."""
        with self._lock:
            icon = self.icon_at(now)
            frame = render(icon, self.rotation, self.brightness)
            if frame != self.frame:
                self.frame = frame
                if self.display is not None:
                    self.display.show(frame)
            return icon

    def _hold(self, icon: str, now: float, seconds: float | None = None) -> None:
        self._icon = icon
        self._until = now + (self.hold if seconds is None else seconds)

    # -- inputs -------------------------------------------------------------------
    def set_connected(self, up: bool, now: float) -> None:
        """Record whether the MQTT connection is up (down shows the disconnected X)."""
        with self._lock:
            if up != self.connected:
                logger.info("display: MQTT connection %s", "up" if up else "down")
            self.connected = up

    def on_event(self, payload: Mapping[str, Any] | bytes | str, now: float) -> str | None:
        """A ``<prefix>/<device>/event`` payload; returns the icon it shows (None: ignored)."""
        obj = _as_mapping(payload)
        if obj is None or not isinstance(obj.get("bin"), str):
            logger.warning("display: ignoring an event without a bin: %.200r", payload)
            return None
        bin_ = obj["bin"]
        decided = obj.get("decision", DECIDED) != UNSURE
        icon = bin_ if decided and bin_ in BINS else UNSURE
        if decided and bin_ not in BINS:
            logger.warning("display: no icon for bin %r; showing ?", bin_)
        with self._lock:
            event_id = obj.get("id")
            self.last_event_id = event_id if isinstance(event_id, str) else None
            self._seen_event = True
            self._hold(icon, now)
        logger.info("display: %s (event %s)", icon, self.last_event_id)
        return icon

    def on_deeplens(self, payload: Mapping[str, Any] | bytes | str, now: float) -> str | None:
        """The recipe's ``{"object": "Compost"}``; it has no id, so it cannot be corrected."""
        obj = _as_mapping(payload)
        name = obj.get("object") if obj else None
        bin_ = DEEPLENS_BINS.get(name) if isinstance(name, str) else None  # type: ignore[call-overload]
        if bin_ is None:
            logger.warning("display: ignoring a DeepLens message: %.200r", payload)
            return None
        with self._lock:
            self.last_event_id = None
            self._seen_event = True
            self._hold(bin_, now)
        return bin_

    def on_state(
        self,
        payload: Mapping[str, Any] | bytes | str,
        now: float,
        wall_now: datetime | None = None,
    ) -> str | None:
        """The retained ``state`` message: the initial picture until the first event.

        A bin whose ``since`` is older than ``hold`` (compared with ``wall_now``) shows
        as idle; with no ``wall_now`` or no valid ``since`` it is shown for a full hold.
        """
        obj = _as_mapping(payload)
        if obj is None or not isinstance(obj.get("bin"), str):
            logger.warning("display: ignoring a state without a bin: %.200r", payload)
            return None
        with self._lock:
            if self._seen_event:
                return None
            bin_ = obj["bin"]
            if bin_ not in BINS:
                self._icon, self._until = IDLE, None
                return IDLE
            since = _parse_ts(obj.get("since"))
            age = (wall_now - since).total_seconds() if since and wall_now else 0.0
            remaining = self.hold - max(age, 0.0)
            if remaining <= 0:
                self._icon, self._until = IDLE, None
                return IDLE
            self._hold(bin_, now, remaining)
            return bin_

    def on_stick(self, event: StickEvent, now: float, wall_now: datetime) -> Correction | None:
        """A joystick event: a correction of the last event to publish, or None."""
        bin_ = joystick_bin(event.direction, event.action)
        if bin_ is None:
            return None
        with self._lock:
            event_id = self.last_event_id
            if event_id is None:
                logger.info("display: joystick %s ignored: no event to correct", event.direction)
                return None
            self._hold(bin_, now)
        logger.info("display: correction of %s → %s", event_id, bin_)
        return Correction(event_id=event_id, bin=bin_, ts=iso(wall_now), source="joystick")
