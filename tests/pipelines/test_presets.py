"""The config presets under ``configs/``: each is valid, and each states the recipe whose
figures the README quotes for it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from whichbin.config import load_settings
from whichbin.training.backbones import get_backbone_spec
from whichbin.training.finetune import Recipe, finetune_settings

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted((ROOT / "configs").glob("*.yaml"))


def _bench_module(name: str) -> ModuleType:
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    preset = settings.pipeline.training
    side = get_backbone_spec(preset.backbone).default_size
    preset = preset.model_copy(update={"image_size": preset.image_size or side})
    bench = _bench_module("finetune_compare")
    measured = bench.finetune_params(method, bench.parser().parse_args([]))
    assert finetune_settings(preset, Recipe()) == finetune_settings(*measured)
    assert settings.pipeline.data.val == bench.val_fraction(method)
    recorded = [results["runs"][f"{method}-{seed}"] for seed in (0, 1, 2)]
    assert all(run["params"] == recorded[0]["params"] for run in recorded)  # one recipe
    for seed, run in enumerate(recorded):
        split = run["split"]  # images per split; near-duplicate groups make it approximate
        assert round(split["val"] / sum(split.values()), 2) == settings.pipeline.data.val, seed
