"""The edge's performance and soak table in docs/operations.md, from edge_fps.json,
edge_soak.json and edge_soak_30min.json."""

from __future__ import annotations

from figures.text import Loader, columns, head


def _lat(r: dict) -> str:
    lat = r["event_latency_received_ms"]
    return f"p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms"


def _soak(name: str, s: dict) -> list[str]:
    rss, ev, minutes = s["rss_mb"], s["edge_summary"], s["duration_s"] / 60
    return [
        f"| {minutes:.0f}-minute soak at {s['fps']:.0f} fps (`{name}`): RSS "
        f"{rss['start_at_s']:.0f} s after start → at the end | {rss['start']} MB → {rss['end']} MB "
        f"({rss['end'] - rss['start']:+.1f} MB); threads {s['threads']['start']} → "
        f"{s['threads']['end']}, open files {s['open_files']['start']} → "
        f"{s['open_files']['end']} |",
        f"| the same soak: events | {ev['events']} decided, {s['events_unique']} received once "
        f"each, {s['events_lost']} lost, {ev['errors']} errors, {s['outbox_pending_at_exit']} "
        f"left in the outbox; {ev['fps']} frames/s |",
    ]


def edge_block(load: Loader) -> list[str]:
    fps = load("edge_fps")
    if fps is None:
        return ["(no bench/results/edge_fps.json yet: run `python bench/edge_fps.py`)"]
    r = fps["results"]
    every1, drops1 = r["max_every_frame_threads1"], r["max_drops_threads1"]
    live1, livedrops1 = r["realtime_every_frame_threads1"], r["realtime_drops_threads1"]
    every2 = r["max_every_frame_threads2"]
    lines = (
        head("Edge throughput and latency", fps)
        + columns("| figure (`bench/results/…`) | value |")
        + [
            "| throughput, every frame classified, 1 ONNX Runtime thread (`edge_fps`: "
            f"`max_every_frame_threads1`) | **{every1['fps']:.1f} frames/s** (inference alone "
            f"{fps['inference_ms_single_thread']:.0f} ms) |",
            "| throughput as the edge runs: still frames of an item until decided "
            f"(`max_drops_threads1`) | {drops1['fps']:.0f} frames/s |",
            "| 30 fps recording played live, latest frame wins, every frame classified "
            f"(`realtime_every_frame_threads1`) | {live1['fps']:.1f} frames/s, "
            f"{live1['dropped']} of {live1['frames']} frames dropped |",
            "| frame-to-event latency, that run: decision frame captured → event received by an "
            f"MQTT subscriber | {_lat(live1)} |",
            f"| the same as the edge runs (`realtime_drops_threads1`) | {_lat(livedrops1)}, "
            f"{livedrops1['dropped']} dropped |",
            "| 2 ONNX Runtime threads, every frame (`max_every_frame_threads2`) | "
            f"{every2['fps']:.1f} frames/s |",
        ]
    )
    soaks = {n: d for n in ("edge_soak", "edge_soak_30min") if (d := load(n)) is not None}
    for name, soak in soaks.items():
        lines += _soak(name, soak)
    when = ", ".join(f"`{n}` {d['when']}" for n, d in soaks.items())
    lines += ["", f"Soaks run: {when}."] if soaks else []
    right = all(v.get("bins_right") for v in r.values())
    verdict = "got its right bin in every run" if right else "did NOT always get its right bin"
    return [*lines, "", f"Every item of the recording {verdict} (`bins_right` in edge_fps.json)."]
