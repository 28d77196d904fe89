"""The config presets under ``configs/``: each is valid, and each states the recipe whose
figures the README quotes for it."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from whichbin.config import load_settings
from whichbin.training.backbones import get_backbone_spec
from whichbin.training.finetune import FinetuneParams

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=[p.name for p in PRESETS])
def test_preset_is_a_valid_config(preset: Path) -> None:
    settings = load_settings(preset)
    assert settings.pipeline.training.mode in ("head", "partial", "full")


def test_accurate_preset_is_the_trashnet_recipe_the_readme_quotes() -> None:
    """The preset is what every seed of the quoted row ran with, as the results record it
    (its fine-tuning parameters and its validation share)."""
    method = "partial:b4:e12:tta:lite2:last:val0.05"  # the summary row the README quotes
    results = json.loads((ROOT / "bench" / "results" / "finetune_compare.json").read_text())
    assert results["summary"][method]["seeds"] == [0, 1, 2]
    settings = load_settings(ROOT / "configs" / "accurate.yaml")
    preset = FinetuneParams.from_training(settings.pipeline.training)
    side = get_backbone_spec(preset.backbone).default_size
    expected = asdict(replace(preset, image_size=preset.image_size or side))
    for seed in (0, 1, 2):
        run = results["runs"][f"{method}-{seed}"]
        assert run["params"] == expected, seed
        split = run["split"]  # images per split; near-duplicate groups make it approximate
        assert round(split["val"] / sum(split.values()), 2) == settings.pipeline.data.val
