"""The edge loop end to end: frames → presence → ONNX Runtime → vote → a real mosquitto."""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.conftest import wait_for
from tests.edge.conftest import EdgeProcess, StartEdge, edge_process_on_compost, new_device
from tests.edge.fakes import InMemoryPublisher
from tests.edge.scenes import scene_frame, write_scene
from tests.helpers import COLORS, Broker, Recorder
from whichbin.cli.main import app
from whichbin.contract import DEEPLENS_TOPIC, Event, State, Topics
from whichbin.edge.runner import ActiveModel, EdgeRunner, StaticModel
from whichbin.edge.sources import Frame
from whichbin.inference import OnnxClassifier

BINS = ["landfill", "compost", "recycling"]


class ListSource:
    def __init__(self, images: list) -> None:
        self.frames = [Frame(img, i / 10, i) for i, img in enumerate(images)]

    def read(self) -> Frame | None:
        return self.frames.pop(0) if self.frames else None

    def close(self) -> None:
        self.frames = []


def user_message(result: Result) -> str:
    """The one-line error: on stderr, or still on the exception if the CLI did not print it."""
    return (result.stderr or "") + str(result.exception or "")


def test_runner_publishes_one_event_per_item_with_a_fixed_clock(color_bundle: Path) -> None:
    images = [scene_frame(None, i) for i in range(8)]
    images += [scene_frame(COLORS["compost"], 10 + i) for i in range(10)]
    images += [scene_frame(None, 30 + i) for i in range(6)]
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    ticks = iter(range(10_000))
    pub = InMemoryPublisher()
    model = ActiveModel.from_classifier(OnnxClassifier(color_bundle))
    runner = EdgeRunner(
        ListSource(images),
        StaticModel(model),
        pub,
        "cam1",
        clock=lambda: t0 + timedelta(seconds=next(ticks)),
    )
    stats = runner.run()
    topics = Topics("cam1")
    (event,) = pub.on(topics.event)
    Event.model_validate(event)
    assert event["bin"] == "compost" and event["label"] == "organic"
    assert event["decision"] == "decided" and event["confidence"] > 0.9
    assert event["model"] == {"version": "test/1", "sha256": model.sha256}
    assert event["rules"] == {"name": "test", "version": "1"}
    # The item arrives on frame 8 (moving), is still on 9 and 10 (present), and frames
    # 10, 11, 12 agree (K = 3 of N = 5). The clock ticks once at start and once per frame.
    assert event["ts"] == "2026-03-01T12:00:13Z"
    assert event["reason"] == "agreed" and event["frames"] == 3
    # classify only still frames while an item is present and undecided: 3 inferences, not 24
    assert stats.classified == 3 and stats.frames == 24
    states = [State.model_validate(s).bin for s in pub.on(topics.state)]
    assert states == ["idle", "compost", "idle"]
    assert all(retain and qos == 1 for t, _, qos, retain in pub.messages if t == topics.state)


def test_runner_waits_without_a_model() -> None:
    class NoModel:
        def current(self) -> None:
            return None

    images = [scene_frame(None, i) for i in range(8)] + [
        scene_frame(COLORS["landfill"], i) for i in range(8)
    ]
    pub = InMemoryPublisher()
    stats = EdgeRunner(ListSource(images), NoModel(), pub, "cam1").run()
    assert stats.events == 0 and stats.errors == 0
    assert [s["bin"] for s in pub.on(Topics("cam1").state)] == ["idle"]


def test_edge_run_cli_folder_to_three_events(
    broker: Broker, color_bundle: Path, tmp_path: Path
) -> None:
    dev, topics = new_device()
    frames = write_scene(tmp_path / "frames", BINS)
    rec = Recorder(broker.url, [f"whichbin/{dev}/#", DEEPLENS_TOPIC])
    try:
        result = CliRunner().invoke(
            app,
            [
                "edge", "run", "--model", str(color_bundle), "--source", str(frames),
                "--fps", "50", "--exit-at-end", "--mqtt", broker.url, "--device-id", dev,
                "--deeplens-topic", "--json", "--data-dir", str(tmp_path / "edge"),
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["events"] == 3 and summary["bins"] == BINS
        assert wait_for(lambda: len(rec.payloads(topics.availability)) >= 2, 5)
        events = rec.payloads(topics.event)
        assert [e["bin"] for e in events] == BINS
        for e in events:
            Event.model_validate(e)
            assert e["device"] == dev and e["decision"] == "decided"
            assert e["model"]["version"] == "test/1"
        assert wait_for(lambda: len(rec.payloads(DEEPLENS_TOPIC)) == 3, 5)
        assert rec.payloads(DEEPLENS_TOPIC) == [
            {"object": "Landfill"},
            {"object": "Compost"},
            {"object": "Recycling"},
        ]
        assert rec.payloads(topics.availability) == ["online", "offline"]
        states = [s["bin"] for s in rec.payloads(topics.state)]
        assert states == ["idle", "landfill", "idle", "compost", "idle", "recycling", "idle"]
    finally:
        rec.close()
    # What a newcomer sees: retained offline and idle.
    late = Recorder(broker.url, [topics.availability, topics.state])
    try:
        assert wait_for(lambda: len(late.messages) >= 2, 5)
        assert late.payloads(topics.availability) == ["offline"]
        assert late.payloads(topics.state)[0]["bin"] == "idle"
        assert all(retain for _, _, retain in late.messages)
    finally:
        late.close()


def test_sigterm_publishes_offline(
    broker: Broker, color_bundle: Path, tmp_path: Path, edge_process: EdgeProcess
) -> None:
    topics, rec, proc = edge_process_on_compost(
        edge_process, broker.url, color_bundle, tmp_path, 50, stdout=subprocess.PIPE
    )
    try:
        # The folder replays (no --exit-at-end): wait for an event, then terminate.
        assert wait_for(lambda: rec.payloads(topics.event), 20), proc.stderr
        assert rec.payloads(topics.availability) == ["online"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert wait_for(lambda: rec.payloads(topics.availability) == ["online", "offline"], 5)
    finally:
        rec.close()


def test_edge_run_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["edge", "run", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "whichbin edge run --source" in result.output


def _edge_run_refused(source: Path, device_id: str, model: str) -> str:
    """``whichbin edge run`` with a fixed model, which must exit 1: its one-line message."""
    args = ["--source", str(source), "--device-id", device_id, "--model", model]
    result = CliRunner().invoke(app, ["edge", "run", *args])
    assert result.exit_code == 1
    return user_message(result)


@pytest.mark.parametrize("bad", ["a/b", "#", ""])
def test_bad_device_id_is_a_user_error(bad: str, color_bundle: Path, tmp_path: Path) -> None:
    assert "--device-id" in _edge_run_refused(tmp_path, bad, str(color_bundle))


def test_missing_model_is_a_user_error(tmp_path: Path) -> None:
    write_scene(tmp_path / "f", [], background_frames=2)
    assert "nope.onnx" in _edge_run_refused(tmp_path / "f", "x", "nope.onnx")


def test_pause_and_resume_commands(
    broker: Broker, color_bundle: Path, tmp_path: Path, start_edge: StartEdge
) -> None:
    from whichbin.messaging.mqtt import MqttClient

    dev, topics = new_device()
    frames = write_scene(tmp_path / "frames", ["compost"])
    svc = start_edge(frames, device_id=dev, model=color_bundle, fps=50)
    pub = MqttClient(broker.url, f"pub-{dev}")
    try:
        assert pub.start(wait=5) and svc.client.wait_connected(5)
        assert wait_for(lambda: svc.runner.stats.events >= 1, 10)
        assert pub.publish_confirmed(topics.command("pause"), b"")
        assert wait_for(lambda: svc.runner.paused, 5)
        paused_at = svc.runner.stats.events
        frames_at = svc.runner.stats.frames
        assert wait_for(lambda: svc.runner.stats.frames > frames_at + 40, 10)
        assert svc.runner.stats.events == paused_at
        assert pub.publish_confirmed(topics.command("resume"), b"{}")
        assert wait_for(lambda: svc.runner.stats.events > paused_at, 10)
    finally:
        pub.stop()


def test_reload_command_reloads_a_fixed_model_and_relearns_the_scene(
    broker: Broker, tmp_path: Path, start_edge: StartEdge
) -> None:
    from tests.edge.fakes import ScriptedSource
    from tests.helpers import make_color_bundle
    from whichbin.messaging.mqtt import MqttClient

    dev, topics = new_device()
    model = make_color_bundle(tmp_path / "model.onnx", version="test/1")
    svc = start_edge(ScriptedSource(fps=50), device_id=dev, model=model)
    pub = MqttClient(broker.url, f"pub-{dev}")
    try:
        assert pub.start(wait=5) and svc.client.wait_connected(5)
        assert wait_for(lambda: svc.runner.presence.background is not None, 5)
        make_color_bundle(model, version="test/2")  # the operator replaced the file
        assert pub.publish_confirmed(topics.command("reload"), b'{"background": true}')
        assert wait_for(lambda: svc.models.current().version == "test/2", 10)
        assert wait_for(lambda: not svc.runner._relearn.is_set(), 5)
    finally:
        pub.stop()
