"""``whichbin edge``: run the camera side (frames → decisions → MQTT)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import typer

from whichbin.cli.options import ConfigOpt, JsonOpt, broker_options, load_config

app = typer.Typer(
    help="The edge camera: classify items in view and publish one event per item.\n\n"
    "Example: whichbin edge run --source 0 --mqtt mqtt://broker.local --device-id kitchen",
    no_args_is_help=True,
)


def _roi(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        parts = [float(p) for p in value.replace(" ", "").split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4:
        raise typer.BadParameter("four fractions x0,y0,x1,y1, e.g. 0.2,0.1,0.8,0.9")
    return parts


@app.command("run")
@broker_options
def run(
    source: str | None = typer.Option(
        None,
        "--source",
        help="Camera index (0), device path (/dev/video0), rtsp:// or http:// stream, "
        "video file, or a folder of images played as frames",
    ),
    device_id: str | None = typer.Option(
        None, "--device-id", help="This device's id in MQTT topics"
    ),
    config: ConfigOpt = None,
    model: Path | None = typer.Option(
        None, "--model", help="Run this bundle (.onnx) instead of following deployments"
    ),
    stills: bool | None = typer.Option(
        None,
        "--stills",
        help="The --source folder holds photos, each one item: one event per photo "
        "(classified whole, no empty scene needed), played once",
    ),
    fps: float | None = typer.Option(
        None,
        "--fps",
        help="Frames per second: playback rate of a folder (default 5) or video file "
        "(default its own rate); a rate cap for cameras and streams",
    ),
    deeplens_topic: bool | None = typer.Option(
        None,
        "--deeplens-topic",
        help='Also publish the recipe\'s {"object": "Recycling"} to deeplens/trash/infer',
    ),
    models_dir: Path | None = typer.Option(
        None,
        "--models-dir",
        help="Where deployed models and current.json (the active model) are kept "
        "\\[default: whichbin-models]",
    ),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="Outbox (events kept while the broker is away), snapshots, corrections and "
        "counters \\[default: whichbin-edge]",
    ),
    max_frames: int | None = typer.Option(
        None, "--max-frames", min=1, help="Stop after this many frames"
    ),
    exit_at_end: bool | None = typer.Option(
        None,
        "--exit-at-end",
        help="Stop when a video file or folder ends (default: replay it from the start)",
    ),
    default_model: bool | None = typer.Option(
        None,
        "--default-model",
        help="Following deployments: use the bundled default model until the first one",
    ),
    rules: Path | None = typer.Option(
        None, "--rules", help="Rule pack YAML overriding the bundle's label → bin rules"
    ),
    vote_frames: int | None = typer.Option(
        None, "--vote-frames", min=1, help="N: the window of latest frames that vote \\[default: 5]"
    ),
    agree_frames: int | None = typer.Option(
        None, "--agree-frames", min=1, help="K: votes a bin needs in the window \\[default: N//2+1]"
    ),
    unsure_after: float | None = typer.Option(
        None, "--unsure-after", help="Seconds without K agreeing frames → unsure \\[default: 10]"
    ),
    roi: str | None = typer.Option(
        None, "--roi", help="Region of interest x0,y0,x1,y1 as fractions, e.g. 0.2,0.1,0.8,0.9"
    ),
    drop_frames: bool | None = typer.Option(
        None,
        "--drop-frames/--no-drop-frames",
        help="Skip to the latest frame when classification is slower than the source "
        "\\[default: on for cameras/streams, off for files/folders]",
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=0, help="ONNX Runtime threads (0 = one per core) \\[default: 1]"
    ),
    snapshots: bool | None = typer.Option(
        None, "--snapshots/--no-snapshots", help="Save each decision's image \\[default: on]"
    ),
    publish_snapshots: bool | None = typer.Option(
        None,
        "--publish-snapshots",
        help="Also publish each decision's JPEG (retained) on <prefix>/<device>/snapshot",
    ),
    home_assistant: bool | None = typer.Option(
        None, "--ha/--no-ha", help="Home Assistant MQTT discovery \\[default: off]"
    ),
    http: int | None = typer.Option(
        None, "--http", min=0, max=65535, help="Serve a live MJPEG view on this port"
    ),
    http_password_file: Path | None = typer.Option(
        None,
        "--http-password-file",
        help="Require this file's password for the live view (HTTP Basic, any user name)",
    ),
    trusted_key: list[str] | None = typer.Option(
        None,
        "--trusted-key",
        help="Public key (PEM) whose signed deployments are accepted; repeat while rotating "
        "keys \\[default: edge.security.trusted_keys; none: every deployment is refused]",
    ),
    file_root: Path | None = typer.Option(
        None,
        "--file-root",
        help="Accept file:// artifact URLs under this folder (the registry on the same machine) "
        "\\[default: edge.security.fetch.file_root; none: file:// refused]",
    ),
    http_host: list[str] | None = typer.Option(
        None,
        "--http-host",
        help="Host that plain http:// artifact URLs may reach (the registry's `whichbin web`); "
        "repeatable \\[default: edge.security.fetch.http_hosts; none: http refused]",
    ),
    insecure_accept_unsigned: bool | None = typer.Option(
        None,
        "--insecure-accept-unsigned",
        help="LAB BENCH ONLY: accept unsigned deployments (anyone on the broker can then "
        "install a model)",
    ),
    json_out: JsonOpt = False,
    broker: dict[str, Any] | None = None,
) -> None:
    """Classify what the camera sees and publish it over MQTT.

    With --json, prints a summary at exit: frames, classified, events, bins.

    One event per item shown (not per frame), retained state, counters and availability;
    events wait in an on-disk outbox while the broker is away. Without --model the edge
    follows deployments published by `whichbin registry approve`. Stops on Ctrl-C or
    SIGTERM, publishing availability "offline".

    Example:
      whichbin edge run --source 0 --mqtt mqtt://broker.local --device-id kitchen --trusted-key registry.pub.pem --http-host registry.local

    Example (registry on the same machine, deployments as file:// URLs):
      whichbin edge run --source 0 --device-id kitchen --trusted-key registry.pub.pem --file-root ./whichbin-registry

    Example (a folder of images, a fixed model, stop at the end):
      whichbin edge run --source ./frames --fps 10 --device-id cam1 --model m.onnx --exit-at-end

    Example (a folder of photos, one event per photo):
      whichbin edge run --source ./photos --stills --device-id cam1 --model m.onnx

    Example (everything from a config file, with a live view on port 8081):
      whichbin edge run --config /etc/whichbin/whichbin.yaml --http 8081
    """  # noqa: E501 - one line per example, so each can be copied as it is
    from whichbin.cli.output import emit_json, err_console
    from whichbin.edge.service import EdgeService

    settings = load_config(
        config,
        {
            **(broker or {}),
            "edge.source": source,
            "edge.device_id": device_id,
            "edge.model": model,
            "edge.fps": fps,
            "edge.stills": stills,
            "edge.deeplens_topic": deeplens_topic,
            "edge.models_dir": models_dir,
            "edge.data_dir": data_dir,
            "edge.max_frames": max_frames,
            "edge.capture.exit_at_end": exit_at_end,
            "edge.capture.drop_frames": drop_frames,
            "edge.default_model": default_model,
            "edge.rules": rules,
            "edge.threads": threads,
            "edge.decision.vote_frames": vote_frames,
            "edge.decision.agree_frames": agree_frames,
            "edge.decision.timeout": unsure_after,
            "edge.presence.roi": _roi(roi),
            "edge.snapshots.enabled": snapshots,
            "edge.snapshots.publish": publish_snapshots,
            "edge.homeassistant.enabled": home_assistant,
            "edge.http.port": http,
            "edge.http.password_file": http_password_file,
            "edge.security.trusted_keys": trusted_key or None,
            "edge.security.insecure_accept_unsigned": insecure_accept_unsigned,
            "edge.security.fetch.file_root": file_root,
            "edge.security.fetch.http_hosts": http_host or None,
        },
    )
    service = EdgeService(settings.edge, settings.mqtt)

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


@app.command("uninstall-ha")
@broker_options
def uninstall_ha(
    device_id: str | None = typer.Option(None, "--device-id", help="The edge device to remove"),
    config: ConfigOpt = None,
    discovery_prefix: str | None = typer.Option(
        None, "--ha-prefix", help="Home Assistant's discovery prefix \\[default: homeassistant]"
    ),
    json_out: JsonOpt = False,
    broker: dict[str, Any] | None = None,
) -> None:
    """Remove a device from Home Assistant: clear its retained discovery configs.

    With --json, prints {"removed": [topics]}.

    Example: whichbin edge uninstall-ha --device-id kitchen --mqtt mqtt://broker.local
    """
    from whichbin.cli.output import emit_json, err_console
    from whichbin.edge.homeassistant import uninstall_home_assistant
    from whichbin.errors import ConfigError
    from whichbin.messaging.mqtt import create_mqtt_client

    settings = load_config(
        config,
        {
            **(broker or {}),
            "edge.device_id": device_id,
            "edge.homeassistant.discovery_prefix": discovery_prefix,
        },
    )
    edge_cfg, mqtt_cfg = settings.edge, settings.mqtt
    if not edge_cfg.device_id:
        raise ConfigError("edge.device_id: required (set --device-id or edge.device_id)")
    client = create_mqtt_client(mqtt_cfg, f"whichbin-ha-uninstall-{edge_cfg.device_id}")
    if not client.start(wait=10.0):
        client.stop()
        raise ConfigError(f"--mqtt {mqtt_cfg.url}: {client.failure(10.0)}")
    try:
        removed = uninstall_home_assistant(
            client,
            edge_cfg.device_id,
            prefix=mqtt_cfg.prefix,
            discovery_prefix=edge_cfg.homeassistant.discovery_prefix,
        )
    finally:
        client.stop()
    if json_out:
        emit_json({"removed": removed})
    else:
        err_console.print(f"removed {len(removed)} Home Assistant configs of {edge_cfg.device_id}")


@app.command("show-config")
def show_config(
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Validate and print the effective edge config (file + environment + defaults).

    Example: whichbin edge show-config --config /etc/whichbin/whichbin.yaml --json
    """
    import yaml

    from whichbin.cli.output import emit_json

    settings = load_config(config)
    doc = {
        "edge": settings.edge.model_dump(mode="json"),
        "mqtt": settings.mqtt.model_dump(mode="json"),
    }
    if json_out:
        emit_json(doc)
    else:
        typer.echo(yaml.safe_dump(doc, sort_keys=False).rstrip())
