"""Edge soak: `whichbin edge run` for a bounded time on a looping recording; memory and
delivery at start and end.

The real CLI runs as a subprocess (as systemd would run it) on a recorded drop sequence
(real photos from ../shared/data at the model's input size, 30 fps, replayed in a loop)
with the bundled model, a real mosquitto, the outbox, snapshots (bounded to 50, so
pruning runs all the time), Home Assistant discovery and the live view. Its RSS, threads
and open files are sampled from /proc; a subscriber counts events (unique ids,
duplicates). At the end the edge gets SIGTERM and prints its --json summary.

Usage:
  nice python bench/edge_soak.py                   # 3 minutes
  nice python bench/edge_soak.py --duration 1800   # the 30-minute soak
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED, write_result  # noqa: E402
from edge_fps import Subscriber, free_port, start_broker  # noqa: E402


def proc_status(pid: int) -> dict[str, float]:
    """RSS (MB), threads and open files of a process, from /proc."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            out["rss_mb"] = round(int(line.split()[1]) / 1024, 1)
        elif line.startswith("Threads:"):
            out["threads"] = int(line.split()[1])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=180.0, help="seconds to run (1800: 30 min)")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between /proc samples")
    ap.add_argument("--warmup", type=float, default=10.0, help="the 'start' sample is taken here")
    ap.add_argument("--items", type=int, default=12, help="items in the looping recording")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    ap.add_argument("--name", default="edge_soak")
    args = ap.parse_args()

    from whichbin.edge.scenes import ROI, drop_sequence, pick_photos, write_video
    from whichbin.inference import OnnxClassifier, default_model_path

    clf = OnnxClassifier(default_model_path(), threads=1)
    size = (clf.meta.preprocess.size, clf.meta.preprocess.size)
    work = Path(tempfile.mkdtemp(prefix="whichbin-bench-soak-"))
    broker, url = start_broker(work)
    device = "soak"
    proc: subprocess.Popen | None = None
    try:
        photos = pick_photos(SHARED, clf, per_bin=4, size=size)
        seq, order = drop_sequence(photos, args.items, seed=21, size=size)
        video = write_video(seq.frames, work / "drops.avi", fps=30)
        config = work / "whichbin.yaml"
        config.write_text(
            json.dumps(
                {
                    "edge": {
                        "snapshots": {"max_count": 50},
                        "presence": {"roi": list(ROI)},
                        "homeassistant": {"enabled": True},
                    }
                }
            )
        )
        sub = Subscriber(url, f"whichbin/{device}/event")
        received: list[str] = []
        original = sub.client.on_message

        def on_message(c, u, m):  # noqa: ANN001
            received.append(json.loads(m.payload)["id"])
            original(c, u, m)

        sub.client.on_message = on_message
        http_port = free_port()
        cmd = [
            sys.executable, "-c", "from whichbin.cli.main import app; app()", "edge", "run",
            "--config", str(config), "--source", str(video), "--device-id", device,
            "--mqtt", url, "--model", str(default_model_path()), "--threads", str(args.threads),
            "--data-dir", str(work / "edge"), "--http", str(http_port), "--json",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=open(work / "edge.log", "wb"),  # noqa: SIM115
            env=env,
        )
        samples: list[dict[str, float]] = []
        start_sample: dict[str, float] | None = None
        while (elapsed := time.monotonic() - t0) < args.duration:
            if proc.poll() is not None:
                raise SystemExit(f"edge exited early: see {work / 'edge.log'}")
            s = {"t": round(elapsed, 1), **proc_status(proc.pid)}
            samples.append(s)
            if start_sample is None and elapsed >= args.warmup:
                start_sample = s
            time.sleep(min(args.sample, max(0.1, args.duration - elapsed)))
        end_sample = {"t": round(time.monotonic() - t0, 1), **proc_status(proc.pid)}
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        summary = json.loads(out.decode().strip().splitlines()[-1])
        time.sleep(1.0)
        sub.close()
        outbox = work / "edge" / "outbox.sqlite"
        with sqlite3.connect(outbox) as db:
            pending = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        snaps = len(list((work / "edge" / "snapshots" / "events").glob("*.jpg")))
        after = [s for s in samples if s["t"] >= args.warmup] + [end_sample]
        slope = (
            float(np.polyfit([s["t"] for s in after], [s["rss_mb"] for s in after], 1)[0]) * 3600
            if len(after) >= 3
            else None
        )
        start = start_sample or samples[0]
        write_result(
            args.name,
            {
                "duration_s": args.duration,
                "recording": {"items": len(order), "fps": 30, "size": size, "loops": True},
                "rss_mb": {
                    "start": start["rss_mb"],
                    "start_at_s": start["t"],
                    "end": end_sample["rss_mb"],
                    "max": max(s["rss_mb"] for s in samples + [end_sample]),
                    "trend_mb_per_hour_after_warmup": round(slope, 1)
                    if slope is not None
                    else None,
                },
                "threads": {"start": start["threads"], "end": end_sample["threads"]},
                "open_files": {"start": start["fds"], "end": end_sample["fds"]},
                "edge_summary": {k: v for k, v in summary.items() if k != "bins"},
                "events_received": len(received),
                "events_unique": len(set(received)),
                "events_lost": summary["events"] - len(set(received)),
                "outbox_pending_at_exit": pending,
                "snapshots_on_disk": snaps,
                "fps": summary.get("fps"),  # frames processed a second (the recording: 30)
                "samples": samples + [end_sample],
            },
        )
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
