"""A head update with a few new photos starts from the last head of the same family."""

from __future__ import annotations

import json
from pathlib import Path

from tests.pipelines.test_local_pipeline import config, make_photos
from whichbin.pipelines.local import run_pipeline


def newest_train_result(work: Path) -> dict:
    """result.json of the train step that ran last."""
    results = sorted(
        (work / "steps" / "train").glob("*/result.json"), key=lambda p: p.stat().st_mtime
    )
    return json.loads(results[-1].read_text())


def test_new_photos_warm_start_the_head_and_a_new_setting_does_not(
    tmp_path: Path, color_bundle: Path
) -> None:
    photos = make_photos(tmp_path / "photos", 14)
    cfg = config(tmp_path, color_bundle)
    cfg.training.epochs = 200
    work = Path(cfg.work_dir)
    run_pipeline(cfg, [photos], None, register=False, progress=False)
    cold = newest_train_result(work)
    assert cold["warm_start"] is False

    make_photos(photos, 2, start=100)
    more = run_pipeline(cfg, [photos], None, register=False, progress=False)
    warm = newest_train_result(work)
    assert warm["warm_start"] is True and warm["family"] == cold["family"]
    assert warm["val"]["best_epoch"] <= cfg.training.warm_epochs
    assert more.metrics["bin_accuracy"] > 0.9

    cfg.training.weight_decay = 0.02  # another recipe: no head of its family yet
    run_pipeline(cfg, [photos], None, register=False, progress=False)
    assert newest_train_result(work)["warm_start"] is False
