"""``whichbin edge``: run the camera side (frames → decisions → MQTT)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    help="The edge camera: classify items in view and publish one event per item.\n\n"
    "Example: whichbin edge run --source 0 --mqtt mqtt://broker.local --device-id kitchen",
    no_args_is_help=True,
)


@app.command("run")
def run(
    source: str = typer.Option(
        ...,
        "--source",
        help="Camera index (0), device path (/dev/video0), rtsp:// or http:// stream, "
        "video file, or a folder of images played as frames",
    ),
    device_id: str = typer.Option(..., "--device-id", help="This device's id in MQTT topics"),
    mqtt: str = typer.Option(
        "mqtt://127.0.0.1:1883",
        "--mqtt",
        help="Broker URL: mqtt://host:port, mqtt://user@host or mqtts:// (TLS); the password from "
        "$WHICHBIN_MQTT_PASSWORD or --password-file",
    ),
    model: Path | None = typer.Option(
        None, "--model", help="Run this bundle (.onnx) instead of following deployments"
    ),
    fps: float | None = typer.Option(
        None,
        "--fps",
        help="Frames per second: playback rate of a folder (default 5) or video file "
        "(default its own rate); a rate cap for cameras and streams",
    ),
    deeplens_topic: bool = typer.Option(
        False,
        "--deeplens-topic",
        help='Also publish the recipe\'s {"object": "Recycling"} to deeplens/trash/infer',
    ),
    prefix: str = typer.Option("whichbin", "--prefix", help="MQTT topic prefix"),
    models_dir: Path = typer.Option(
        Path("whichbin-models"),
        "--models-dir",
        help="Where deployed models and current.json (the active model) are kept",
    ),
    max_frames: int | None = typer.Option(
        None, "--max-frames", min=1, help="Stop after this many frames"
    ),
    exit_at_end: bool = typer.Option(
        False,
        "--exit-at-end",
        help="Stop when a video file or folder ends (default: replay it from the start)",
    ),
    default_model: bool = typer.Option(
        False,
        "--default-model",
        help="Following deployments: use the bundled default model until the first one",
    ),
    rules: Path | None = typer.Option(
        None, "--rules", help="Rule pack YAML overriding the bundle's label → bin rules"
    ),
    vote_frames: int = typer.Option(
        5, "--vote-frames", min=1, help="Frames of an item to vote over before deciding"
    ),
    password_file: str | None = typer.Option(
        None, "--password-file", help="File holding the MQTT password"
    ),
    ca_file: str | None = typer.Option(None, "--ca-file", help="CA bundle for mqtts://"),
    json_out: bool = typer.Option(
        False, "--json", help="At exit, print a JSON summary: frames, classified, events, bins"
    ),
) -> None:
    """Classify what the camera sees and publish it over MQTT.

    One event per item shown (not per frame), retained state and availability, and
    without --model the edge follows deployments published by `whichbin registry approve`.
    Stops on Ctrl-C or SIGTERM, publishing availability "offline".

    Example:
      whichbin edge run --source 0 --mqtt mqtt://broker.local --device-id kitchen

    Example (a folder of images, a fixed model, stop at the end):
      whichbin edge run --source ./frames --fps 10 --device-id cam1 --model m.onnx --exit-at-end
    """
    from whichbin.cli.output import emit_json, err_console
    from whichbin.edge.service import EdgeOptions, EdgeService

    options = EdgeOptions(
        source=source,
        device_id=device_id,
        mqtt_url=mqtt,
        model=model,
        fps=fps,
        deeplens=deeplens_topic,
        prefix=prefix,
        models_dir=models_dir,
        max_frames=max_frames,
        exit_at_end=exit_at_end,
        default_model=default_model,
        rules=rules,
        vote_frames=vote_frames,
        password_file=password_file,
        ca_file=ca_file,
    )
    service = EdgeService(options)

    def on_signal(signum: int, frame: Any) -> None:
        service.runner.stop()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():  # signals need the main thread
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        stats = service.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if json_out:
        emit_json(stats.as_dict())
    else:
        err_console.print(
            f"{stats.frames} frames, {stats.events} events ({', '.join(stats.bins) or 'none'})"
        )
