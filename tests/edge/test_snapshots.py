"""Snapshots on disk (bounded by count and age, unsure kept) and corrections for retraining."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import wait_for
from tests.edge.conftest import StartEdge, new_device
from tests.edge.fakes import ScriptedSource
from tests.helpers import COLORS, Broker
from whichbin.config import SnapshotConfig
from whichbin.contract import Correction, Event, LabelP, ModelRef, RulesRef, iso, utc_now
from whichbin.edge.snapshots import SnapshotStore

DAY = 86400.0


def event(decision: str = "decided", bin_: str = "recycling") -> Event:
    return Event(
        ts=iso(utc_now()),
        device="cam1",
        bin=bin_,
        label="plastic",
        confidence=0.91 if decision == "decided" else 0.4,
        decision=decision,  # type: ignore[arg-type]
        top_k=[LabelP(label="plastic", p=0.91)],
        model=ModelRef(version="m/1", sha256="ab" * 32),
        rules=RulesRef(name="test", version="1"),
    )


IMAGE = np.full((48, 64, 3), (30, 30, 220), np.uint8)


def test_save_writes_the_jpeg_and_event_and_keeps_unsure_apart(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    decided, unsure = event(), event("unsure")
    path, jpeg = store.save(IMAGE, decided)
    assert path == tmp_path / "events" / f"{decided.id}.jpg"
    assert jpeg[:2] == b"\xff\xd8" and path.read_bytes() == jpeg
    assert json.loads(path.with_suffix(".json").read_text())["id"] == decided.id
    upath, _ = store.save(IMAGE, unsure)
    assert upath.parent.name == "unsure"
    assert store.find(unsure.id) == upath and store.find("0" * 32) is None


def test_retention_by_count_and_age(tmp_path: Path) -> None:
    now = time.time()
    store = SnapshotStore(
        tmp_path,
        SnapshotConfig(max_count=3, max_age_days=2, unsure_max_count=10),
        clock=lambda: now,
    )
    events = [event() for _ in range(5)]
    for age_days, e in zip([9, 1.5, 1, 0.5, 0.1], events, strict=True):
        path, _ = store.save(IMAGE, e)
        os.utime(path, (now - age_days * DAY, now - age_days * DAY))
    unsure = [event("unsure") for _ in range(4)]
    for e in unsure:
        path, _ = store.save(IMAGE, e)
        os.utime(path, (now - 30 * DAY, now - 30 * DAY))  # old, but kept for review
    store.prune()
    kept = {p.stem for p in store.list("events")}
    assert kept == {e.id for e in events[2:]}  # the newest 3
    assert not (tmp_path / "events" / f"{events[0].id}.json").exists()
    assert {p.stem for p in store.list("unsure")} == {e.id for e in unsure}
    # 1.2 days later the 1-day-old one is 2.2 days old: over the age limit.
    assert store.prune(now + 1.2 * DAY) == 1
    assert {p.stem for p in store.list("events")} == {e.id for e in events[3:]}


def test_a_correction_files_the_snapshot_under_the_corrected_bin(tmp_path: Path) -> None:
    from whichbin.processing.sources import read_source

    store = SnapshotStore(tmp_path)
    wrong = event("unsure", bin_="landfill")
    store.save(IMAGE, wrong)
    record = store.correct(
        Correction(event_id=wrong.id, bin="recycling", ts=iso(utc_now()), source="joystick")
    )
    target = tmp_path / "corrections" / "recycling" / f"{wrong.id}.jpg"
    assert target.is_file() and record["file"] == f"recycling/{wrong.id}.jpg"
    assert record["was"]["bin"] == "landfill" and record["was"]["decision"] == "unsure"
    assert not (tmp_path / "unsure" / f"{wrong.id}.jpg").exists()  # reviewed
    # Corrected again: it moves, never under two labels.
    store.correct(Correction(event_id=wrong.id, bin="compost", ts=iso(utc_now())))
    assert not target.exists()
    assert (tmp_path / "corrections" / "compost" / f"{wrong.id}.jpg").is_file()
    lines = (tmp_path / "corrections" / "corrections.jsonl").read_text().splitlines()
    assert [json.loads(x)["bin"] for x in lines] == ["recycling", "compost"]
    # `whichbin data import` reads the folder as an image-folder tree of bins.
    items = read_source(tmp_path / "corrections", "auto")
    assert [(i.path.name, i.label) for i in items] == [(f"{wrong.id}.jpg", "compost")]


def test_corrections_of_unknown_or_unsafe_items(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    record = store.correct(Correction(event_id="f" * 32, bin="compost", ts=iso(utc_now())))
    assert record["file"] is None and record["was"] is None
    with pytest.raises(ValueError, match="bin"):
        store.correct(Correction(event_id="f" * 32, bin="../etc", ts=iso(utc_now())))
    with pytest.raises(ValueError, match="event id"):
        store.correct(Correction(event_id="../../x", bin="compost", ts=iso(utc_now())))


def test_edge_saves_snapshots_and_files_corrections_from_mqtt(
    broker: Broker, color_bundle: Path, tmp_path: Path, start_edge: StartEdge
) -> None:
    from whichbin.messaging.mqtt import MqttClient

    dev, topics = new_device()
    camera = ScriptedSource(fps=50)  # runs until the test ends: the correction finds it
    svc = start_edge(camera, device_id=dev, model=color_bundle, data_dir=tmp_path / "edge")
    pub = MqttClient(broker.url, f"pi-{dev}")
    try:
        assert pub.start(wait=5)
        assert wait_for(lambda: svc.runner.stats.frames > 20, 5)  # the empty scene learned
        camera.show("landfill")
        assert wait_for(lambda: svc.runner.stats.events == 1, 10)
        (event_id,) = svc.runner.stats.event_ids
        snaps = tmp_path / "edge" / "snapshots"
        shot = snaps / "events" / f"{event_id}.jpg"
        assert shot.is_file()
        # The classified image: the item's crop, squared up (the frame is 96 x 72).
        from PIL import Image

        with Image.open(shot) as im:
            assert im.size == (72, 72)
            pixels = np.asarray(im.convert("RGB")).astype(int)
        red = np.all(np.abs(pixels - COLORS["landfill"]) < 40, axis=-1)
        assert red.mean() > 0.6
        # A correction naming no bin of the model is dropped: no folder, no training data.
        bogus = Correction(event_id=event_id, bin="mallory", ts=iso(utc_now()))
        assert pub.publish_confirmed(topics.correction, bogus.to_json())
        # The joystick says it was compost.
        correction = Correction(event_id=event_id, bin="compost", ts=iso(utc_now()))
        assert pub.publish_confirmed(topics.correction, correction.to_json())
        assert wait_for(lambda: (snaps / "corrections" / "compost" / shot.name).is_file(), 5)
        log = (snaps / "corrections" / "corrections.jsonl").read_text().splitlines()
        assert json.loads(log[-1])["was"]["bin"] == "landfill"
        assert len(log) == 1 and not (snaps / "corrections" / "mallory").exists()
        counters = json.loads((tmp_path / "edge" / "counters.json").read_text())
        assert counters["landfill"] == 1 and counters["total"] == 1
    finally:
        pub.stop()
