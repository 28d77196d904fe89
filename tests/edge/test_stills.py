"""`--stills`: a folder of photos is a set of items, one event each; and a scene that never
shows the empty background says so instead of silently seeing nothing."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import wait_for
from tests.edge.conftest import new_device
from tests.edge.fakes import InMemoryPublisher
from tests.edge.test_item_crop import ListSource, photo
from tests.helpers import COLORS, Broker, Recorder
from whichbin.cli.main import app
from whichbin.contract import Event
from whichbin.edge.runner import NO_BACKGROUND_WARN_FRAMES, ActiveModel, EdgeRunner, StaticModel
from whichbin.edge.sources import create_source
from whichbin.errors import ConfigError
from whichbin.inference import OnnxClassifier

BINS = ["landfill", "compost", "recycling"]
WARNING = "no empty scene learned"


def photos(folder: Path) -> Path:
    """Three photo-like JPEGs of different sizes, one per bin, named in BINS order."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, b in enumerate(BINS):
        photo(folder / f"{i}_{b}.jpg", COLORS[b], size=(160 + 40 * i, 120 + 10 * i))
    return folder


def test_stills_folder_gives_one_event_per_photo(
    broker: Broker, color_bundle: Path, tmp_path: Path
) -> None:
    dev, topics = new_device()
    folder = photos(tmp_path / "photos")
    rec = Recorder(broker.url, [f"whichbin/{dev}/#"])
    try:
        # No --exit-at-end: a folder of stills is played once.
        result = CliRunner().invoke(
            app,
            [
                "edge", "run", "--stills", "--source", str(folder), "--fps", "50",
                "--model", str(color_bundle), "--mqtt", broker.url, "--device-id", dev,
                "--data-dir", str(tmp_path / "edge"), "--json",
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["frames"] == 3 and summary["events"] == 3 and summary["bins"] == BINS
        assert wait_for(lambda: len(rec.payloads(topics.availability)) >= 2, 5)
        events = rec.payloads(topics.event)
        assert len(events) == 3
        for e, b in zip(events, BINS, strict=True):
            assert isinstance(e, dict)
            Event.model_validate(e)
            assert e["bin"] == b and e["decision"] == "decided" and e["device"] == dev
            assert e["reason"] == "still" and e["frames"] == 1
            assert e["model"]["version"] == "test/1" and len(e["top_k"]) == 3
        assert len({e["id"] for e in events if isinstance(e, dict)}) == 3
        states = [s["bin"] for s in rec.payloads(topics.state) if isinstance(s, dict)]
        assert states == ["idle", *BINS, "idle"]
    finally:
        rec.close()


def test_stills_need_a_folder(color_bundle: Path, tmp_path: Path) -> None:
    single = photo(tmp_path / "one.jpg", COLORS["compost"])
    with pytest.raises(ConfigError, match="--stills"):
        create_source(str(single), stills=True)
    result = CliRunner().invoke(
        app,
        ["edge", "run", "--stills", "--source", str(single), "--device-id", "x",
         "--model", str(color_bundle)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--stills" in (result.stderr or "") + str(result.exception or "")


def test_stills_frames_are_whole_items(tmp_path: Path) -> None:
    source = create_source(str(photos(tmp_path / "p")), fps=1000, loop=True, stills=True)
    frames = [source.read() for _ in range(4)]
    assert [f is not None and f.whole_item for f in frames[:3]] == [True] * 3
    assert frames[3] is None  # played once, even when asked to loop
    plain = create_source(str(tmp_path / "p"), fps=1000)
    first = plain.read()
    assert first is not None and not first.whole_item


def unrelated_photos(n: int) -> list[np.ndarray]:
    """Photos that have nothing to do with each other: never a still, empty scene."""
    rng = np.random.default_rng(0)
    return [
        np.clip(rng.normal(0, 20, (72, 96, 3)) + rng.uniform(30, 220, 3), 0, 255).astype(np.uint8)
        for _ in range(n)
    ]


def run(images: list[np.ndarray], color_bundle: Path) -> EdgeRunner:
    model = ActiveModel.from_classifier(OnnxClassifier(color_bundle))
    runner = EdgeRunner(ListSource(images), StaticModel(model), InMemoryPublisher(), "cam1")
    runner.run()
    return runner


def test_a_scene_that_never_settles_is_reported_once(
    color_bundle: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="whichbin.edge.runner")
    runner = run(unrelated_photos(3 * NO_BACKGROUND_WARN_FRAMES), color_bundle)
    assert runner.stats.events == 0
    warnings = [r for r in caplog.records if WARNING in r.getMessage()]
    assert len(warnings) == 1
    assert "--stills" in warnings[0].getMessage()
    assert f"after {NO_BACKGROUND_WARN_FRAMES} frames" in warnings[0].getMessage()


def test_a_short_run_without_an_empty_scene_is_reported_at_its_end(
    color_bundle: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="whichbin.edge.runner")
    run(unrelated_photos(6), color_bundle)
    assert [r for r in caplog.records if WARNING in r.getMessage()]


def test_a_scene_with_an_empty_background_is_not_reported(
    color_bundle: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.edge.scenes import scene_frame

    caplog.set_level(logging.WARNING, logger="whichbin.edge.runner")
    images = [scene_frame(None, i) for i in range(8)]
    images += [scene_frame(COLORS["compost"], 10 + i) for i in range(10)]
    images += [scene_frame(None, 30 + i) for i in range(2 * NO_BACKGROUND_WARN_FRAMES)]
    assert run(images, color_bundle).stats.events == 1
    assert not [r for r in caplog.records if WARNING in r.getMessage()]
