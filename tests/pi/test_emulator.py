"""The real sense_emu Sense HAT, headless: frames read back from its shared-memory
matrix, rotation cross-checked with SenseHat.set_rotation, and the emulated joystick."""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import wait_for
from tests.helpers import Broker, Recorder
from tests.pi.support import connect, display_config, make_event
from whichbin.contract import Topics
from whichbin.pi.displays import SenseHatDisplay, create_sense_hat_display
from whichbin.pi.render import quantise_rgb565, render, rotate
from whichbin.pi.runner import start_display

sense_emu = pytest.importorskip("sense_emu", reason="needs the Sense HAT emulator (the [pi] extra)")
# sense_emu loads its font with a Pillow API Pillow deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")


def quantised(pixels: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    return [quantise_rgb565(p) for p in pixels]


@pytest.fixture()
def emulator() -> Iterator[SenseHatDisplay]:
    d = create_sense_hat_display(emulator=True)
    yield d
    d.close()


@pytest.mark.parametrize("icon", ["compost", "landfill", "recycling", "idle", "disconnected"])
def test_frames_read_back_from_the_emulator(emulator: SenseHatDisplay, icon: str) -> None:
    frame = render(icon, rotation=90, brightness=0.5)
    emulator.show(frame)
    assert emulator.read() == quantised(frame)


def test_rotation_matches_sense_hat_set_rotation(emulator: SenseHatDisplay) -> None:
    hat = emulator.hat
    picture = render("recycling")
    for degrees in (90, 180, 270):
        hat.set_rotation(degrees, redraw=False)
        hat.set_pixels(picture)
        hat.set_rotation(0, redraw=False)
        assert emulator.read() == quantised(rotate(picture, degrees)), degrees


def test_close_clears_the_matrix() -> None:
    d = create_sense_hat_display(emulator=True)
    d.show(render("compost"))
    d.close()
    d2 = create_sense_hat_display(emulator=True)
    try:
        assert set(d2.read()) == {(0, 0, 0)}
    finally:
        d2.close()


def _press(server, key: int) -> None:  # noqa: ANN001
    from sense_emu.stick import SenseStick

    now = time.time()
    sec, usec = int(now), int((now % 1) * 1e6)
    fmt = SenseStick.EVENT_FORMAT
    server.send(struct.pack(fmt, sec, usec, SenseStick.EV_KEY, key, SenseStick.STATE_PRESS))
    server.send(struct.pack(fmt, sec, usec, SenseStick.EV_KEY, key, SenseStick.STATE_RELEASE))


def test_emulated_joystick_publishes_a_correction(broker: Broker) -> None:
    from sense_emu.stick import SenseStick, StickServer

    server = StickServer()  # what sense_emu_gui runs; the display's stick pings it
    display = create_sense_hat_display(emulator=True)
    device = f"bin-{uuid.uuid4().hex[:8]}"
    topics = Topics(device)
    rec = Recorder(broker.url, [topics.correction])
    runner = None
    try:
        # wait until the emulated stick is wired (its client says hello once a second)
        def stick_works() -> bool:
            _press(server, SenseStick.KEY_UP)
            time.sleep(0.2)
            return any(e.direction == "up" for e in display.stick_events())

        assert wait_for(stick_works, 10)
        runner = start_display(
            *display_config(broker.url, device, hold=5.0), display, tick_interval=0.05, wait=10
        )
        pub = connect(broker.url)
        ev = make_event(device, "compost")
        pub.publish_confirmed(topics.event, ev.to_json())
        pub.stop()
        assert wait_for(lambda: runner.app.last_event_id == ev.id, 5)
        assert wait_for(lambda: display.read() == quantised(render("compost")), 5)
        _press(server, SenseStick.KEY_DOWN)
        assert wait_for(lambda: rec.payloads(topics.correction), 5)
        (c,) = rec.payloads(topics.correction)
        assert isinstance(c, dict)
        assert (c["event_id"], c["bin"], c["source"]) == (ev.id, "landfill", "joystick")
        assert wait_for(lambda: display.read() == quantised(render("landfill")), 5)
    finally:
        if runner is not None:
            runner.stop()
        rec.close()
        display.close()
        server.close()
