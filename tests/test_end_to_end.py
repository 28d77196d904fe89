"""The whole loop on one machine, all real parts: real images → pipeline → registry →
approval → an already-running edge that follows deployments swaps to the new model →
items shown to the "camera" → one MQTT event per item → the Pi display shows the icon.

All of it through a mosquitto locked down as deploy/mosquitto/ ships it (TLS, a certificate
and password per client, the ACL with its opt-in DeepLens grant): the edge logs in as its
device (``kitchen``), the display as ``display-kitchen``, the approval and the test's
observer as ``registry``."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.conftest import wait_for
from tests.edge import conftest as edge_fixtures
from tests.edge.conftest import StartEdge
from tests.helpers import TlsBroker
from whichbin.cli.main import app

pytestmark = pytest.mark.slow
start_edge = edge_fixtures.start_edge  # the edge tests' one fixture, for this test too

SUBSET = {  # (set, label) → images taken; small but real
    ("trashnet", "glass"): 24,
    ("trashnet", "cardboard"): 24,
    ("trashnet", "plastic"): 24,
    ("trashnet", "trash"): 24,
    ("extra", "organic"): 24,
    ("extra", "textile"): 24,
}
ITEM_LABELS = {"recycling": "glass", "landfill": "trash", "compost": "organic"}
COUNTER = (90, 70, 50)  # a brown counter top the camera looks at
FRAME = (160, 120)


def counter_frame(rng: np.random.Generator) -> np.ndarray:
    w, h = FRAME
    arr = np.empty((h, w, 3), np.float32)
    arr[:] = COUNTER
    arr += rng.normal(0, 3, arr.shape)
    return np.clip(arr, 0, 255).astype(np.uint8)


def item_frame(photo: Path, rng: np.random.Generator) -> np.ndarray:
    """The photo laid on the counter, covering its central 80 %."""
    arr = counter_frame(rng)
    h, w = arr.shape[:2]
    y0, x0 = h // 10, w // 10
    with Image.open(photo) as im:
        item = np.asarray(im.convert("RGB").resize((w - 2 * x0, h - 2 * y0)))
    arr[y0 : h - y0, x0 : w - x0] = item
    return arr


class CounterCamera:
    """A FrameSource: the empty counter until ``go`` is set, then the folder of frames
    played once (through the real FolderSource), then the empty counter again."""

    def __init__(self, folder: Path, fps: float) -> None:
        from whichbin.edge.sources import FolderSource

        self.folder = FolderSource(folder, fps=fps)
        self.go = threading.Event()
        self.played = threading.Event()
        self.rng = np.random.default_rng(0)
        self.period = 1.0 / fps
        self.closed = False

    def read(self):  # noqa: ANN201
        from whichbin.contract import utc_now
        from whichbin.edge.sources import Frame

        if self.closed:
            return None
        if self.go.is_set() and not self.played.is_set():
            frame = self.folder.read()
            if frame is not None:
                return frame
            self.played.set()
        time.sleep(self.period)
        return Frame(image=counter_frame(self.rng), ts=utc_now(), index=-1)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("tls_broker", [("deeplens",)], indirect=True, ids=["deeplens"])
def test_images_to_pipeline_to_approval_to_edge_to_display(
    shared_data: Path,
    tls_broker: TlsBroker,
    tmp_path: Path,
    start_edge: StartEdge,
    signing_key,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.pi.support import display_config
    from whichbin.inference import OnnxClassifier
    from whichbin.pi.displays import RecorderDisplay
    from whichbin.pi.render import render
    from whichbin.pi.runner import start_display

    # -- 1. a small real-image subset ---------------------------------------------------
    data = tmp_path / "photos"
    for (source, label), n in SUBSET.items():
        (data / label).mkdir(parents=True)
        for f in sorted((shared_data / source / label).glob("*.jpg"))[:n]:
            shutil.copy(f, data / label / f.name)
    registry = tmp_path / "registry"
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f"work_dir: {tmp_path / 'work'}\n"
        "training: {epochs: 200}\n"
        "gate: {min_bin_accuracy: 0.6, "
        "min_bin_recall: {compost: 0.5, landfill: 0.3, recycling: 0.5}}\n"
    )
    runner = CliRunner()

    # -- 2. pipeline → candidate in the registry ----------------------------------------
    res = runner.invoke(
        app,
        [
            "pipeline",
            "run",
            "--config",
            str(config),
            "--data",
            str(data),
            "--registry",
            str(registry),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["gate"] == "passed", out["reasons"]
    assert out["status"] == "PendingManualApproval"
    version = out["version"]
    assert version == "trash-classifier/1"
    assert set(out["metrics"]["bin_recall"]) == {"compost", "landfill", "recycling"}

    # Pick, per bin, a training photo the candidate gets right when laid on the counter.
    artifact = registry / "artifacts" / "trash-classifier" / "1" / "model.onnx"
    clf = OnnxClassifier(artifact)
    rng = np.random.default_rng(1)
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    order = ["landfill", "compost", "recycling"]
    frames: list[np.ndarray] = []
    for b in order:
        # The photo the candidate is surest about, as laid on the counter (frames differ by
        # noise, and the edge votes over them).
        scored = []
        for photo in sorted((data / ITEM_LABELS[b]).glob("*.jpg")):
            pred = clf.predict([item_frame(photo, rng)])[0]
            if pred.bin == b and pred.decision == "decided":
                scored.append((pred.confidence, photo.name, photo))
        if not scored:
            pytest.fail(f"no {ITEM_LABELS[b]} photo is classified as {b} by the candidate")
        photo = max(scored)[2]
        frames += [counter_frame(rng) for _ in range(4)]
        frames += [item_frame(photo, rng) for _ in range(8)]
    frames += [counter_frame(rng) for _ in range(6)]
    for i, f in enumerate(frames):
        Image.fromarray(f).save(frames_dir / f"{i:04d}.jpg", quality=92)

    # -- 3. an edge already running, following deployments; a Pi display ----------------
    device = "kitchen"  # its account on the broker, as the display's is display-kitchen
    rec = tls_broker.recorder("registry", ["whichbin/#"])
    recipe_pi = tls_broker.recorder(f"display-{device}", ["deeplens/#"])  # the recipe's Pi
    display = RecorderDisplay()
    _, pi_config = display_config(tls_broker.url, device, hold=60.0)  # its pi section
    pi = start_display(tls_broker.mqtt(f"display-{device}"), pi_config, display, wait=5)
    camera = CounterCamera(frames_dir, fps=20)
    edge = start_edge(
        camera,
        device_id=device,
        mqtt=tls_broker.mqtt(device),
        deeplens_topic=True,
        # Trusts the approver's public key; fetches file:// only from the registry.
        security=signing_key.edge_security(file_root=registry),
    )
    try:
        assert wait_for(lambda: rec.payloads(f"whichbin/{device}/availability")[-1:] == ["online"])
        assert display.wait_for(render("idle"), timeout=5)

        # -- 4. a person approves → retained fleet deployment → the edge swaps models ----
        for k, v in tls_broker.env("registry").items():  # the approver's account
            monkeypatch.setenv(k, v)
        res = runner.invoke(
            app,
            [
                "registry",
                "approve",
                version,
                "--registry",
                str(registry),
                "--mqtt",
                tls_broker.url_for("registry"),
                "--by",
                "alice",
                "--note",
                "e2e",
            ],
        )
        assert res.exit_code == 0, res.output
        status_topic = f"whichbin/{device}/deployment/status"
        assert wait_for(
            lambda: any(s.get("state") == "active" for s in rec.payloads(status_topic)), 30
        ), rec.payloads(status_topic)
        states = [s["state"] for s in rec.payloads(status_topic)]
        assert states[:3] == ["downloading", "verifying", "active"]
        deployment = rec.payloads("whichbin/fleet/deployment")[-1]
        assert deployment["version"] == version and deployment["approved_by"] == "alice"
        assert deployment["key_id"] == signing_key.signer.key_id and deployment["signature"]

        # -- 5. items shown to the camera → one event per item with the right bin ---------
        camera.go.set()
        assert camera.played.wait(30)
        events_topic = f"whichbin/{device}/event"
        assert wait_for(lambda: len(rec.payloads(events_topic)) >= 3, 15)
        # Nothing more must come from the empty counter: a second of frames (20) processed
        # after the last item, and what the edge sent meanwhile arrived.
        frames_seen = edge.runner.stats.frames
        assert wait_for(lambda: edge.runner.stats.frames >= frames_seen + 20, 10)
        rec.sync(events_topic, via=edge.client)
        recipe_pi.sync("deeplens/trash/infer", via=edge.client)
        events = rec.payloads(events_topic)
        assert [e["bin"] for e in events] == order, events
        assert all(e["decision"] == "decided" for e in events), events
        assert {e["model"]["version"] for e in events} == {version}
        assert {e["model"]["sha256"] for e in events} == {deployment["sha256"]}
        assert len({e["id"] for e in events}) == 3
        assert [m["object"] for m in recipe_pi.payloads("deeplens/trash/infer")] == [
            "Landfill",
            "Compost",
            "Recycling",
        ]

        # -- 6. the display showed each icon in turn, the last one still held -----------
        assert display.wait_for(render("recycling"), timeout=5)
        icons = {name: render(name) for name in ("compost", "landfill", "recycling")}
        shown = []
        for frame in display.frames:
            for name, pixels in icons.items():
                if frame == pixels and (not shown or shown[-1] != name):
                    shown.append(name)
        assert shown == order
    finally:
        pi.stop()
        rec.close()
        recipe_pi.close()
