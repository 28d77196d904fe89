"""Edge throughput and frame-to-event latency, end to end, from a video file.

A recorded drop sequence (real photos from ../shared/data put down on a counter under
drifting light, at the model's input size) is played from an MJPEG .avi through the real
edge: capture thread → presence → ONNX Runtime (the bundled EfficientNet-Lite0) → K-of-N
vote → SQLite outbox → a real mosquitto → an MQTT subscriber. Every frame is processed
Workloads:

* ``drops``: the edge as it runs (classifies still frames of an item until decided);
* ``every_frame``: the worst case, every frame classified (``classify_all``);

each in two modes:

* ``max``: every frame processed (no dropping), read as fast as the edge can go: the
  throughput (fps). Frames wait in the capture queue here, so latency includes a backlog.
* ``realtime``: played at the recording's 30 fps with latest-frame-wins, as a camera
  is: the latency a user sees (and how many frames had to be dropped).

Latency per event: from the capture of the frame that decided the item to (a) the runner
done with the event (stored in the outbox, counted, snapshot saved) and (b) the event
received by an MQTT subscriber.

Usage: nice python bench/edge_fps.py [--items 24] [--repeat 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED, write_result  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(workdir: Path) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"mqtt://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


class Subscriber:
    """Receives events and notes the monotonic time each id first arrived."""

    def __init__(self, url: str, topic: str) -> None:
        import json

        import paho.mqtt.client as mqtt

        host, port = url.removeprefix("mqtt://").split(":")
        self.arrived: dict[str, float] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        ready = threading.Event()

        def on_connect(c, u, f, rc, p=None):  # noqa: ANN001
            c.subscribe(topic, 1)
            ready.set()

        def on_message(c, u, m):  # noqa: ANN001
            self.arrived.setdefault(json.loads(m.payload)["id"], time.monotonic())

        self.client.on_connect, self.client.on_message = on_connect, on_message
        self.client.connect(host, int(port))
        self.client.loop_start()
        ready.wait(10)
        time.sleep(0.2)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def pct(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "n": 0}
    a = np.asarray(values)
    return {
        "p50": round(float(np.percentile(a, 50)), 2),
        "p99": round(float(np.percentile(a, 99)), 2),
        "n": len(values),
    }


def run_once(
    video: Path,
    url: str,
    workdir: Path,
    threads: int,
    classify_all: bool,
    realtime: bool,
    name: str,
) -> dict:
    from whichbin.config import CaptureConfig, EdgeConfig, MqttConfig, PresenceConfig
    from whichbin.edge.scenes import ROI
    from whichbin.edge.service import EdgeService
    from whichbin.inference import default_model_path

    device = f"bench-{name}"
    sub = Subscriber(url, f"whichbin/{device}/event")
    svc = EdgeService(
        EdgeConfig(
            source=str(video),
            device_id=device,
            model=default_model_path(),
            fps=None if realtime else 100_000,
            data_dir=workdir / name,
            presence=PresenceConfig(roi=ROI),
            threads=threads,
            capture=CaptureConfig(drop_frames=realtime, exit_at_end=True),
        ),
        MqttConfig(url=url),
        classify_all=classify_all,
    )
    t0 = time.perf_counter()
    stats = svc.run()
    wall = time.perf_counter() - t0
    deadline = time.monotonic() + 10
    while len(sub.arrived) < stats.events and time.monotonic() < deadline:
        time.sleep(0.05)
    sub.close()
    received = [
        (sub.arrived[eid] - captured) * 1000
        for eid, captured in stats.event_captured
        if eid in sub.arrived
    ]
    return {
        "frames": stats.frames,
        "dropped": stats.dropped,
        "classified": stats.classified,
        "events": stats.events,
        "received": len(sub.arrived),
        "bins": list(stats.bins),
        "wall_s": round(wall, 3),  # including model load and broker connect
        "fps": stats.fps,  # first frame's capture to the last frame done
        "frame_latency_ms": pct(list(stats.frame_ms)),
        "event_latency_stored_ms": pct(list(stats.event_ms)),
        "event_latency_received_ms": pct(received),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=24, help="items dropped in the recording")
    ap.add_argument("--repeat", type=int, default=2, help="runs per workload")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="ONNX Runtime threads")
    ap.add_argument("--name", default="edge_fps")
    args = ap.parse_args()

    from whichbin.edge.scenes import drop_sequence, pick_photos, write_video
    from whichbin.inference import OnnxClassifier, default_model_path

    clf = OnnxClassifier(default_model_path(), threads=1)
    size = (clf.meta.preprocess.size, clf.meta.preprocess.size)  # the model's input size
    work = Path(tempfile.mkdtemp(prefix="whichbin-bench-edge-"))
    broker, url = start_broker(work)
    try:
        photos = pick_photos(SHARED, clf, per_bin=4, size=size)
        seq, order = drop_sequence(photos, args.items, seed=11, size=size)
        video = write_video(seq.frames, work / "drops.avi", fps=30)
        x = np.zeros((size[1], size[0], 3), np.uint8)
        for _ in range(5):
            clf.predict([x])
        t = time.perf_counter()
        for _ in range(30):
            clf.predict([x])
        infer_ms = (time.perf_counter() - t) / 30 * 1000

        results: dict[str, dict] = {}
        for threads in args.threads:
            for mode in ("max", "realtime"):
                for workload, classify_all in (("drops", False), ("every_frame", True)):
                    key = f"{mode}_{workload}_threads{threads}"
                    runs = [
                        run_once(
                            video,
                            url,
                            work,
                            threads,
                            classify_all,
                            mode == "realtime",
                            f"{key}-{i}",
                        )
                        for i in range(args.repeat)
                    ]
                    # max: the best throughput; realtime: the run with the median p50 latency
                    if mode == "max":
                        best = max(runs, key=lambda r: r["fps"])
                    else:
                        runs.sort(key=lambda r: r["event_latency_received_ms"]["p50"] or 0)
                        best = runs[len(runs) // 2]
                    best["fps_all_runs"] = [r["fps"] for r in runs]
                    best["bins_right"] = best["bins"] == order
                    results[key] = best
                    print(
                        f"{key}: {best['fps']} fps, event p50/p99 "
                        f"{best['event_latency_received_ms']['p50']}/"
                        f"{best['event_latency_received_ms']['p99']} ms, "
                        f"dropped {best['dropped']}",
                        file=sys.stderr,
                    )
        write_result(
            args.name,
            {
                "input_size": size,
                "video": {
                    "frames": len(seq.frames),
                    "items": len(order),
                    "codec": "MJPG",
                    "size": size,
                },
                "model": "bundled default (EfficientNet-Lite0 bundle)",
                "inference_ms_single_thread": round(infer_ms, 2),
                "results": results,
                "target_fps": 30,
                "notes": "max: every frame processed, fastest of --repeat runs; realtime: "
                "30 fps with latest-frame-wins, the run with the median latency; the "
                "machine is shared with other jobs, so figures vary between runs",
            },
        )
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
