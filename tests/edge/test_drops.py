"""Recorded drop sequences of real photos through the real video source and default model:
exactly one event per item with the right bin, and none for an empty scene under drifting
and switched light."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.edge.fakes import InMemoryPublisher
from whichbin.config import PresenceConfig
from whichbin.contract import Topics
from whichbin.edge.capture import ThreadedSource
from whichbin.edge.presence import PresenceDetector
from whichbin.edge.runner import ActiveModel, EdgeRunner, StaticModel
from whichbin.edge.scenes import ROI, SequenceBuilder, pick_photos, write_video
from whichbin.edge.sources import create_source
from whichbin.inference import OnnxClassifier, default_model_path

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def default_model() -> ActiveModel:
    return ActiveModel.from_classifier(OnnxClassifier(default_model_path(), threads=1))


def play(video: Path, model: ActiveModel) -> tuple[EdgeRunner, InMemoryPublisher]:
    """Play a recording through the capture thread and the runner, as `edge run` does."""
    pub = InMemoryPublisher()
    source = ThreadedSource(create_source(str(video), fps=1000), drop=False)
    runner = EdgeRunner(
        source,
        StaticModel(model),
        pub,
        "cam1",
        presence=PresenceDetector(PresenceConfig(roi=ROI)),
    )
    runner.run()
    return runner, pub


def test_one_event_per_dropped_item_with_its_bin(
    shared_data: Path, default_model: ActiveModel, tmp_path: Path
) -> None:
    photos = pick_photos(shared_data, default_model.classifier)
    order = ["recycling", "compost", "landfill", "landfill", "recycling", "compost"]
    used = {b: iter(ps) for b, ps in photos.items()}
    builder = SequenceBuilder(seed=3).empty(12)
    for b in order:
        builder.drop(next(used[b]), b)
    seq = builder.empty(10).build()
    runner, pub = play(write_video(seq.frames, tmp_path / "drops.avi"), default_model)

    events = pub.on(Topics("cam1").event)
    assert [e["bin"] for e in events] == order
    assert all(e["decision"] == "decided" and e["reason"] == "agreed" for e in events)
    assert runner.stats.frames == len(seq.frames) and runner.stats.errors == 0
    # Classified: a few still frames per item, never the empty counter or moving frames.
    assert runner.stats.classified <= 5 * len(order)
    states = [s["bin"] for s in pub.on(Topics("cam1").state)]
    assert states == ["idle"] + [x for b in order for x in (b, "idle")]


def test_no_event_for_an_empty_scene_under_drifting_and_switched_light(
    default_model: ActiveModel, tmp_path: Path
) -> None:
    builder = SequenceBuilder(seed=5, drift=25.0, period=150).empty(200)
    frames = builder.build().frames
    # Someone switches a light on (+35 grey levels), later off again.
    lit = [np.clip(f.astype(np.int16) + 35, 0, 255).astype(np.uint8) for f in frames[80:150]]
    frames = frames[:80] + lit + frames[150:]
    runner, pub = play(write_video(frames, tmp_path / "empty.avi"), default_model)
    assert runner.stats.frames == 200
    assert pub.on(Topics("cam1").event) == []
    assert runner.stats.classified == 0
