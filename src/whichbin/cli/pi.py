"""``whichbin pi``: the Raspberry Pi display device (Sense HAT, emulator or terminal)."""

from __future__ import annotations

import signal
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from whichbin.cli.options import ConfigOpt, broker_options, load_config

app = typer.Typer(
    help="The display device: show which bin an item goes in on a Sense HAT.\n\n"
    "Example: whichbin pi display --mqtt mqtt://broker.local --device-id bin-1",
    no_args_is_help=True,
)


class Output(StrEnum):
    sensehat = "sensehat"
    emulator = "emulator"
    terminal = "terminal"


def _rotation(value: int | None) -> int | None:
    if value not in (None, 0, 90, 180, 270):
        raise typer.BadParameter("must be 0, 90, 180 or 270")
    return value


@app.command("display")
@broker_options
def display(
    device_id: str | None = typer.Option(
        None, "--device-id", help="The edge device whose events to show"
    ),
    config: ConfigOpt = None,
    output: Output | None = typer.Option(
        None,
        "--output",
        help="sensehat (on a Pi), emulator (sense_emu) or terminal \\[default: sensehat]",
    ),
    hold: float | None = typer.Option(
        None,
        "--hold",
        min=0.1,
        help="Seconds a bin's icon stays up before the idle ? \\[default: 3]",
    ),
    rotation: int | None = typer.Option(
        None, "--rotation", callback=_rotation, help="Rotate the picture clockwise: 0/90/180/270"
    ),
    brightness: float | None = typer.Option(
        None, "--brightness", min=0.0, max=1.0, help="LED brightness, 0..1 \\[default: 1]"
    ),
    deeplens_topic: str | None = typer.Option(
        None,
        "--deeplens-topic",
        help='Also show the recipe\'s {"object": "Compost"} messages from this topic '
        "(e.g. deeplens/trash/infer)",
    ),
    password_env: str | None = typer.Option(
        None,
        "--password-env",
        help="Env var holding the broker password \\[default: WHICHBIN_MQTT_PASSWORD]",
    ),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="Joystick corrections wait here (outbox.sqlite) while the broker is away "
        "\\[default: whichbin-pi]",
    ),
    broker: dict[str, Any] | None = None,
) -> None:
    """Show each item's bin (green C, red L, blue R; orange ? idle/unsure; dim red X offline).

    Joystick: left = compost, right = recycling, down = landfill corrects the last item
    (published on <prefix>/<device>/correction). Runs until Ctrl+C.

    The broker and the device come from --mqtt and --device-id or from the config file's
    mqtt: and pi: sections.

    Example: whichbin pi display --mqtt mqtt://broker.local --device-id bin-1 --output emulator
    """
    from whichbin.messaging.mqtt import parse_mqtt_url
    from whichbin.pi.displays import create_display
    from whichbin.pi.runner import start_display

    settings = load_config(
        config,
        {
            **(broker or {}),
            "mqtt.password_env": password_env,
            "pi.device_id": device_id,
            "pi.output": output.value if output else None,
            "pi.hold": hold,
            "pi.rotation": rotation,
            "pi.brightness": brightness,
            "pi.deeplens_topic": deeplens_topic,
            "pi.data_dir": data_dir,
        },
    )
    # The broker and the device have no useful default here: missing is a usage error.
    if "url" not in settings.mqtt.model_fields_set:
        raise typer.BadParameter("give --mqtt URL (or mqtt.url in the config)", param_hint="--mqtt")
    if not settings.pi.device_id:
        raise typer.BadParameter(
            "give --device-id ID (or pi.device_id in the config)", param_hint="--device-id"
        )
    parse_mqtt_url(settings.mqtt.url)  # a bad URL is a one-line error before any hardware
    screen = create_display(settings.pi.output)
    runner = start_display(settings.mqtt, settings.pi, screen)
    # systemd stops services with SIGTERM: leave the LEDs dark and the broker told
    signal.signal(signal.SIGTERM, lambda *_: runner.request_stop())
    try:
        runner.run_forever()
    finally:
        close = getattr(screen, "close", None)
        if callable(close):
            close()
