"""The display state machine with plain timestamps: no broker, no clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from whichbin.contract import Correction
from whichbin.pi.app import DisplayApp, joystick_bin
from whichbin.pi.displays import RecorderDisplay, StickEvent
from whichbin.pi.render import render

WALL = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def event(bin_: str, decision: str = "decided", id_: str = "e1") -> bytes:
    return json.dumps({"v": 1, "id": id_, "bin": bin_, "decision": decision}).encode()


@pytest.fixture()
def shown() -> RecorderDisplay:
    return RecorderDisplay()


@pytest.fixture()
def app(shown: RecorderDisplay) -> DisplayApp:
    a = DisplayApp(shown, hold=3.0)
    a.set_connected(True, 0.0)
    return a


def test_starts_disconnected_until_connected(shown: RecorderDisplay) -> None:
    a = DisplayApp(shown, hold=3.0)
    assert a.tick(0.0) == "disconnected"
    assert shown.last == render("disconnected")
    a.set_connected(True, 0.5)
    assert a.tick(0.5) == "idle"
    assert shown.last == render("idle")


def test_bin_held_for_hold_seconds_then_idle(app: DisplayApp, shown: RecorderDisplay) -> None:
    app.tick(0.0)
    assert app.on_event(event("compost"), 10.0) == "compost"
    assert app.tick(10.0) == "compost"
    assert shown.last == render("compost")
    assert app.tick(12.99) == "compost"
    assert app.tick(13.0) == "idle"
    assert shown.last == render("idle")
    assert shown.frames == [render("idle"), render("compost"), render("idle")]


def test_each_bin_has_its_icon(app: DisplayApp, shown: RecorderDisplay) -> None:
    for t, b in enumerate(("landfill", "recycling", "compost")):
        app.on_event(event(b), float(t))
        app.tick(float(t))
        assert shown.last == render(b)


def test_unsure_shows_question_mark_at_once(app: DisplayApp, shown: RecorderDisplay) -> None:
    app.on_event(event("compost"), 0.0)
    app.tick(0.0)
    app.on_event(event("compost", decision="unsure"), 1.0)
    assert app.tick(1.0) == "unsure"
    assert shown.last == render("idle")
    assert app.tick(4.0) == "idle"


def test_new_event_restarts_the_hold(app: DisplayApp) -> None:
    app.on_event(event("compost"), 0.0)
    app.on_event(event("recycling"), 2.0)
    assert app.tick(4.0) == "recycling"
    assert app.tick(5.0) == "idle"


def test_disconnect_overrides_and_reconnect_restores(
    app: DisplayApp, shown: RecorderDisplay
) -> None:
    app.on_event(event("landfill"), 0.0)
    app.tick(0.0)
    app.set_connected(False, 1.0)
    assert app.tick(1.0) == "disconnected"
    assert shown.last == render("disconnected")
    app.set_connected(True, 2.0)
    assert app.tick(2.0) == "landfill"  # still within the hold
    app.set_connected(False, 2.5)
    app.set_connected(True, 5.0)
    assert app.tick(5.0) == "idle"


def test_unknown_bin_and_malformed_payloads(app: DisplayApp) -> None:
    assert app.on_event(event("hazardous"), 0.0) == "unsure"
    assert app.on_event(b"not json", 0.0) is None
    assert app.on_event(b'{"id": "x"}', 0.0) is None
    assert app.on_event(b"[1, 2]", 0.0) is None
    assert app.on_deeplens(b'{"object": "Banana"}', 0.0) is None
    assert app.on_state(b"{}", 0.0) is None


def test_only_changed_frames_reach_the_display(app: DisplayApp, shown: RecorderDisplay) -> None:
    for t in range(5):
        app.tick(float(t))
    assert len(shown.frames) == 1
    app.on_event(event("compost", decision="unsure"), 5.0)
    app.tick(5.0)  # "unsure" looks like "idle": nothing to redraw
    assert len(shown.frames) == 1


def test_rotation_and_brightness_apply(shown: RecorderDisplay) -> None:
    a = DisplayApp(shown, hold=1.0, rotation=180, brightness=0.25)
    a.set_connected(True, 0.0)
    a.on_event(event("recycling"), 0.0)
    a.tick(0.0)
    assert shown.last == render("recycling", rotation=180, brightness=0.25)
    with pytest.raises(ValueError):
        DisplayApp(shown, rotation=45)
    with pytest.raises(ValueError):
        DisplayApp(shown, hold=0)


def test_state_gives_the_initial_picture(app: DisplayApp) -> None:
    since = (WALL - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    state = json.dumps({"bin": "recycling", "since": since})
    assert app.on_state(state, 100.0, WALL) == "recycling"
    assert app.tick(101.9) == "recycling"  # 3 s hold, 1 s already gone
    assert app.tick(102.0) == "idle"


def test_old_or_idle_state_shows_idle(app: DisplayApp) -> None:
    old = (WALL - timedelta(minutes=5)).isoformat()
    assert app.on_state(json.dumps({"bin": "compost", "since": old}), 0.0, WALL) == "idle"
    assert app.on_state({"bin": "unsure", "since": old}, 0.0, WALL) == "idle"
    assert app.tick(0.0) == "idle"


def test_state_after_an_event_is_ignored(app: DisplayApp) -> None:
    app.on_event(event("compost"), 0.0)
    assert app.on_state({"bin": "idle", "since": WALL.isoformat()}, 1.0, WALL) is None
    assert app.tick(1.0) == "compost"


def test_deeplens_message(app: DisplayApp, shown: RecorderDisplay) -> None:
    assert app.on_deeplens(b'{"object": "Compost"}', 0.0) == "compost"
    app.tick(0.0)
    assert shown.last == render("compost")
    assert app.last_event_id is None


@pytest.mark.parametrize(
    ("direction", "action", "bin_"),
    [
        ("left", "pressed", "compost"),
        ("right", "pressed", "recycling"),
        ("down", "pressed", "landfill"),
        ("up", "pressed", None),
        ("middle", "pressed", None),
        ("left", "released", None),
        ("left", "held", None),
    ],
)
def test_joystick_mapping(direction: str, action: str, bin_: str | None) -> None:
    assert joystick_bin(direction, action) == bin_


def test_joystick_corrects_the_last_event(app: DisplayApp, shown: RecorderDisplay) -> None:
    assert app.on_stick(StickEvent("left", "pressed"), 0.0, WALL) is None  # nothing to correct
    app.on_event(event("landfill", id_="abc"), 1.0)
    c = app.on_stick(StickEvent("right", "pressed"), 2.0, WALL)
    assert isinstance(c, Correction)
    assert (c.event_id, c.bin, c.source, c.ts) == (
        "abc",
        "recycling",
        "joystick",
        "2026-05-01T12:00:00Z",
    )
    assert app.tick(2.0) == "recycling"  # the corrected bin is shown for a full hold
    assert app.tick(4.9) == "recycling"
    assert app.on_stick(StickEvent("up", "pressed"), 3.0, WALL) is None


def test_deeplens_message_cannot_be_corrected(app: DisplayApp) -> None:
    app.on_event(event("landfill", id_="abc"), 0.0)
    app.on_deeplens(b'{"object": "Recycling"}', 1.0)
    assert app.on_stick(StickEvent("left", "pressed"), 2.0, WALL) is None
