"""With a model approved, re-runs stay fast: the approved bundle runs only on test images it
has not seen. Lineage and per-source metrics name every source the dataset holds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.pipelines.test_local_pipeline import config, make_photos, photos_config_registry
from whichbin.pipelines.cache import LogitsCache, cached_logits
from whichbin.pipelines.evaluate_steps import evaluate_file_step
from whichbin.pipelines.local import run_pipeline
from whichbin.processing.manifest import ManifestRow, attribute_sources
from whichbin.registry import open_registry
from whichbin.rules import load_rules


def rows_of(folder: Path) -> list[ManifestRow]:
    return [
        ManifestRow(p, p.parent.name, "test", hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*.jpg"))
    ]


def test_a_bundle_runs_only_on_images_it_has_not_seen(tmp_path: Path, color_bundle: Path) -> None:
    photos = make_photos(tmp_path / "photos", 3)
    rows = rows_of(photos)
    cache = LogitsCache(tmp_path / "cache.sqlite")
    rules = load_rules(None)
    first = evaluate_file_step(
        tmp_path, color_bundle, "approved", rows, rules, None, ["a"] * len(rows), cache, False
    )
    assert first.computed == len(rows) == 9
    assert first.metrics["bin_accuracy"] > 0.9 and first.metrics["per_source"]["a"]["n"] == 9

    make_photos(photos, 1, start=50)  # 3 more images, one per label...
    more = rows_of(photos)
    (photos / "plastic" / "recycling_50.jpg").unlink()  # ...of which 2 stay
    more = [r for r in more if r.path.exists()]
    again = evaluate_file_step(
        tmp_path, color_bundle, "approved", more, rules, None, ["a"] * len(more), cache, False
    )
    assert again.computed == 2
    assert cache.count("approved") == 11 and again.metrics["n"] == 11
    unchanged = evaluate_file_step(
        tmp_path, color_bundle, "approved", more, rules, None, ["a"] * len(more), cache, False
    )
    assert unchanged.computed == 0 and unchanged.metrics == again.metrics
    cache.close()


def test_cached_logits_calls_the_model_with_the_missing_images_only(tmp_path: Path) -> None:
    import numpy as np

    calls: list[list[Path]] = []

    def compute(paths: list[Path]) -> np.ndarray:
        calls.append(paths)
        return np.array([[float(len(p.name)), 0.0] for p in paths])

    cache = LogitsCache(tmp_path / "c.sqlite")
    paths = [Path(f"/x/{'i' * n}") for n in range(1, 5)]
    shas = [f"s{n}" for n in range(1, 5)]
    logits, n = cached_logits(cache, "m", shas[:2], paths[:2], compute)
    assert n == 2 and logits[:, 0].tolist() == [1.0, 2.0]
    logits, n = cached_logits(cache, "m", shas, paths, compute)
    assert n == 2 and calls[-1] == paths[2:] and logits[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    _, n = cached_logits(cache, "other", shas[:1], paths[:1], compute)
    assert n == 1  # keyed per model
    cache.close()


def _approved_results(work: Path) -> list[dict]:
    files = sorted(
        (work / "steps" / "evaluate_approved").glob("*/result.json"),
        key=lambda p: p.stat().st_mtime,
    )
    return [json.loads(f.read_text()) for f in files]


def test_approved_model_is_evaluated_incrementally_in_the_pipeline(
    tmp_path: Path, color_bundle: Path
) -> None:
    photos, cfg, reg = photos_config_registry(tmp_path, color_bundle)
    first = run_pipeline(cfg, [photos], reg, progress=False)
    open_registry(reg).approve(first.version, by="alice")

    again = run_pipeline(cfg, [photos], reg, progress=False)
    assert again.lineage["compared_with"] == first.version
    # Approved from this work directory: its logits were kept when it was the candidate.
    assert _approved_results(tmp_path / "work")[-1]["computed"] == 0

    before = {r.sha256 for r in _test_rows(tmp_path)}
    make_photos(photos, 4, start=100)
    more = run_pipeline(cfg, [photos], reg, progress=False)
    new_test = {r.sha256 for r in _test_rows(tmp_path)} - before
    assert new_test, "some new photos should land in the test split"
    assert _approved_results(tmp_path / "work")[-1]["computed"] == len(new_test)
    assert more.timings["evaluate_approved"]["cached"] is False

    unchanged = run_pipeline(cfg, [photos], reg, progress=False)
    assert unchanged.timings["evaluate_approved"]["cached"]


def _test_rows(tmp_path: Path) -> list[ManifestRow]:
    from whichbin.processing.manifest import load_manifest

    return [r for r in load_manifest(tmp_path / "work" / "dataset") if r.split == "test"]


def test_lineage_and_per_source_metrics_name_sources_of_earlier_runs(
    tmp_path: Path, color_bundle: Path
) -> None:
    kitchen = make_photos(tmp_path / "kitchen", 14)
    office = make_photos(tmp_path / "office", 14, start=200)
    cfg = config(tmp_path, color_bundle)
    run_pipeline(cfg, [kitchen], None, register=False, progress=False)
    res = run_pipeline(cfg, [office], str(tmp_path / "reg"), progress=False)
    assert res.lineage["sources"] == [str(kitchen), str(office)]
    assert res.lineage["source_images"] == {str(kitchen): 42, str(office): 42}
    per_source = res.metrics["per_source"]
    assert set(per_source) == {str(kitchen), str(office)}
    assert sum(m["n"] for m in per_source.values()) == res.metrics["n"]
    stored = open_registry(str(tmp_path / "reg")).get(res.version)
    assert stored.metrics["per_source"] == per_source
    assert stored.lineage["sources"] == [str(kitchen), str(office)]
    assert "Test split per data source" in Path(res.report).read_text()


def test_sources_are_attributed_by_record_then_folder_then_guess() -> None:
    samples = [
        ("images/glass/a.jpg", "glass", "/d/list-images/a.jpg"),  # from a .lst: recorded
        ("images/glass/b.jpg", "glass", "/data/trashnet/glass/b.jpg"),  # under a folder source
        ("images/food/c.jpg", "food", "/data/real/takeaway/food/c.jpg"),  # longest match wins
        ("images/cup/d.jpg", "cup", "/old/photos/cup/d.jpg"),  # imported before any record
    ]
    got = attribute_sources(
        samples,
        {"images/glass/a.jpg": "my.lst"},
        [("data", ["/data"]), ("../takeaway", ["/data/real/takeaway"])],
    )
    assert got == {
        "images/glass/a.jpg": "my.lst",
        "images/glass/b.jpg": "data",
        "images/food/c.jpg": "../takeaway",
        "images/cup/d.jpg": "/old/photos",
    }
