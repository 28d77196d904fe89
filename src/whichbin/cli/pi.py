"""``whichbin pi``: the Raspberry Pi display device (Sense HAT, emulator or terminal)."""

from __future__ import annotations

import signal
from enum import StrEnum
from pathlib import Path

import typer

app = typer.Typer(
    help="The display device: show which bin an item goes in on a Sense HAT.\n\n"
    "Example: whichbin pi display --mqtt mqtt://broker.local --device-id bin-1",
    no_args_is_help=True,
)


class Output(StrEnum):
    sensehat = "sensehat"
    emulator = "emulator"
    terminal = "terminal"


def _rotation(value: int) -> int:
    if value not in (0, 90, 180, 270):
        raise typer.BadParameter("must be 0, 90, 180 or 270")
    return value


@app.command("display")
def display(
    mqtt: str = typer.Option(..., "--mqtt", help="Broker URL: mqtt://[user@]host[:port]"),
    device_id: str = typer.Option(..., "--device-id", help="The edge device whose events to show"),
    output: Output = typer.Option(
        Output.sensehat, "--output", help="sensehat (on a Pi), emulator (sense_emu) or terminal"
    ),
    hold: float = typer.Option(
        3.0, "--hold", min=0.1, help="Seconds a bin's icon stays up before the idle ?"
    ),
    rotation: int = typer.Option(
        0, "--rotation", callback=_rotation, help="Rotate the picture clockwise: 0/90/180/270"
    ),
    brightness: float = typer.Option(
        1.0, "--brightness", min=0.0, max=1.0, help="LED brightness, 0..1"
    ),
    prefix: str = typer.Option("whichbin", "--prefix", help="MQTT topic prefix"),
    deeplens_topic: str | None = typer.Option(
        None,
        "--deeplens-topic",
        help='Also show the recipe\'s {"object": "Compost"} messages from this topic '
        "(e.g. deeplens/trash/infer)",
    ),
    password_file: str | None = typer.Option(
        None, "--password-file", help="File holding the broker password"
    ),
    password_env: str = typer.Option(
        "WHICHBIN_MQTT_PASSWORD", "--password-env", help="Env var holding the broker password"
    ),
    ca_file: str | None = typer.Option(None, "--ca-file", help="CA bundle for mqtts://"),
    cert_file: str | None = typer.Option(
        None, "--cert-file", help="Client certificate for mqtts:// (whichbin certs)"
    ),
    key_file: str | None = typer.Option(None, "--key-file", help="Its private key"),
    data_dir: Path = typer.Option(
        Path("whichbin-pi"),
        "--data-dir",
        help="Joystick corrections wait here (outbox.sqlite) while the broker is away",
    ),
) -> None:
    """Show each item's bin (green C, red L, blue R; orange ? idle/unsure; dim red X offline).

    Joystick: left = compost, right = recycling, down = landfill corrects the last item
    (published on <prefix>/<device>/correction). Runs until Ctrl+C.

    Example: whichbin pi display --mqtt mqtt://broker.local --device-id bin-1 --output emulator
    """
    from whichbin.messaging.mqtt import parse_mqtt_url, read_password
    from whichbin.pi.displays import create_display
    from whichbin.pi.runner import start_display

    parse_mqtt_url(mqtt)  # a bad URL is a one-line error before any hardware is touched
    password = read_password(password_env, password_file)
    screen = create_display(output.value)
    runner = start_display(
        mqtt,
        device_id,
        screen,
        hold=hold,
        rotation=rotation,
        brightness=brightness,
        prefix=prefix,
        deeplens_topic=deeplens_topic,
        password=password,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        outbox=data_dir / "outbox.sqlite",
    )
    # systemd stops services with SIGTERM: leave the LEDs dark and the broker told
    signal.signal(signal.SIGTERM, lambda *_: runner.request_stop())
    try:
        runner.run_forever()
    finally:
        close = getattr(screen, "close", None)
        if callable(close):
            close()
