"""Where frames go: the Sense HAT (real or emulated), a terminal, or a recorder (the fake).

Every display takes the 64 RGB tuples :mod:`whichbin.pi.render` produces. Rotation and
brightness are already applied by the renderer, so the Sense HAT is always driven at
rotation 0 and full gamma.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from whichbin.errors import ConfigError
from whichbin.pi.render import BLACK, RGB, SIZE, Pixels, to_text

logger = logging.getLogger(__name__)

OUTPUTS = ("sensehat", "emulator", "terminal")


class Display(Protocol):
    """An 8×8 RGB matrix."""

    def show(self, pixels: Sequence[RGB]) -> None:
        """Show 64 row-major RGB tuples."""
        ...

    def clear(self) -> None:
        """Switch every LED off."""
        ...


@dataclass(frozen=True)
class StickEvent:
    """One joystick event, as the Sense HAT reports it."""

    direction: str  # up, down, left, right, middle
    action: str  # pressed, released, held


class StickSource(Protocol):
    """Something that yields joystick events since the last call (never blocks)."""

    def stick_events(self) -> list[StickEvent]: ...


# -- the fake -----------------------------------------------------------------------
class RecorderDisplay:
    """Keeps every frame shown (thread-safe). The documented fake for tests.

    ``frames`` holds each frame in order; ``last`` the current one; ``wait_for(pixels)``
    blocks until that picture is on screen. ``press(direction)`` queues a joystick press,
    so it is also a :class:`StickSource`.
    """

    def __init__(self) -> None:
        self.frames: list[Pixels] = []
        self._cond = threading.Condition()
        self._stick: list[StickEvent] = []

    def show(self, pixels: Sequence[RGB]) -> None:
        frame = [tuple(p) for p in pixels]
        if len(frame) != SIZE * SIZE:
            raise ValueError("a frame is 64 pixels")
        with self._cond:
            self.frames.append(frame)  # type: ignore[arg-type]
            self._cond.notify_all()

    def clear(self) -> None:
        self.show([BLACK] * (SIZE * SIZE))

    @property
    def last(self) -> Pixels | None:
        with self._cond:
            return self.frames[-1] if self.frames else None

    def wait_for(self, pixels: Sequence[RGB], timeout: float = 5.0) -> bool:
        """Block until ``pixels`` is the frame on screen; False after ``timeout`` seconds."""
        want = [tuple(p) for p in pixels]
        with self._cond:
            return self._cond.wait_for(
                lambda: bool(self.frames) and self.frames[-1] == want, timeout
            )

    def press(self, direction: str, action: str = "pressed") -> None:
        """Queue a joystick event for the next ``stick_events()`` call."""
        with self._cond:
            self._stick.append(StickEvent(direction, action))

    def stick_events(self) -> list[StickEvent]:
        with self._cond:
            out, self._stick = self._stick, []
        return out


# -- Sense HAT ----------------------------------------------------------------------
class SenseHatDisplay:
    """A ``sense_hat.SenseHat`` (or ``sense_emu.SenseHat``) LED matrix and joystick."""

    def __init__(self, hat: Any, lock: Any = None, client_socket: str | None = None) -> None:
        self.hat = hat
        self._lock = lock  # the emulator lock we hold when running headless
        self._client_socket = client_socket  # sense_emu's joystick socket file, left behind

    def show(self, pixels: Sequence[RGB]) -> None:
        self.hat.set_pixels([tuple(p) for p in pixels])

    def clear(self) -> None:
        self.hat.clear()

    def read(self) -> Pixels:
        """What the matrix holds now (RGB565 precision: compare with ``quantise_rgb565``)."""
        return [(int(r), int(g), int(b)) for r, g, b in self.hat.get_pixels()]

    def stick_events(self) -> list[StickEvent]:
        stick = getattr(self.hat, "stick", None)
        if stick is None:
            return []
        return [StickEvent(str(e.direction), str(e.action)) for e in stick.get_events()]

    def close(self) -> None:
        """Switch the LEDs off and release the joystick (and a headless emulator lock)."""
        try:
            self.hat.clear()
        except OSError:
            logger.warning("could not clear the LED matrix on close")
        stick = getattr(self.hat, "stick", None)
        if stick is not None and hasattr(stick, "close"):
            stick.close()
        if self._lock is not None and self._lock.mine:
            self._lock.release()
        self._lock = None
        if self._client_socket:
            Path(self._client_socket).unlink(missing_ok=True)
            self._client_socket = None


def _claim_headless_emulator() -> Any:
    """Hold the emulator lock ourselves when no sense_emu_gui is running.

    ``sense_emu.SenseHat()`` otherwise waits a second and tries to spawn the GTK GUI. The
    emulated matrix is a file in /dev/shm either way, so headless works: the GUI (if
    started later, or already running) simply shows the same file.
    """
    from sense_emu.lock import EmulatorLock

    lock = EmulatorLock("sense_emu")
    if lock.wait(0):
        return None  # a GUI or sense_play drives the emulation
    try:
        lock.acquire()
    except FileExistsError:
        return None  # one started meanwhile
    return lock


def create_sense_hat_display(emulator: bool = False) -> SenseHatDisplay:
    """The real Sense HAT (``sense_hat``) or the emulator (``sense_emu``, works headless)."""
    if emulator:
        try:
            import sense_emu
        except ImportError as e:
            raise ConfigError(
                "--output emulator needs sense-emu: pip install 'whichbin[pi]'"
            ) from e
        from sense_emu.stick import stick_address

        lock = _claim_headless_emulator()
        # sense_emu binds one joystick socket per process and never removes the file
        sock = Path(stick_address()[2]).with_name(f"rpi-sense-emu-client-{os.getpid()}")
        try:
            return SenseHatDisplay(sense_emu.SenseHat(), lock, str(sock))
        except Exception:
            if lock is not None:
                lock.release()
            raise
    try:
        import sense_hat
    except ImportError as e:
        raise ConfigError(
            "--output sensehat needs the sense-hat package on a Raspberry Pi "
            "(pip install 'whichbin[pi]'); elsewhere use --output emulator or terminal"
        ) from e
    try:
        return SenseHatDisplay(sense_hat.SenseHat())
    except OSError as e:
        raise ConfigError(f"--output sensehat: no Sense HAT found ({e})") from e


# -- terminal -----------------------------------------------------------------------
class TerminalDisplay:
    """Coloured blocks on a rich console (stderr by default), one 8-line frame per change.

    Without colour support (output piped to a file) each frame is 8 lines of ``#``/``.``.
    """

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)

    def show(self, pixels: Sequence[RGB]) -> None:
        from rich.text import Text

        if self.console.color_system is None:
            # not a colour terminal (a pipe, a log file): # for lit LEDs, . for dark ones
            self.console.print(to_text(pixels) + "\n", markup=False, highlight=False)
            return
        text = Text()
        for row in range(SIZE):
            for r, g, b in pixels[row * SIZE : (row + 1) * SIZE]:
                text.append("  ", style=f"on rgb({r},{g},{b})")
            text.append("\n")
        self.console.print(text)

    def clear(self) -> None:
        self.show([BLACK] * (SIZE * SIZE))


def create_display(output: str) -> Display:
    """``sensehat``, ``emulator`` or ``terminal`` → a display."""
    if output == "terminal":
        return TerminalDisplay()
    if output in ("sensehat", "emulator"):
        return create_sense_hat_display(emulator=output == "emulator")
    raise ConfigError(f"--output {output!r}: choose one of {', '.join(OUTPUTS)}")
