"""Folders named after a bin (``my-photos/compost/``, the edge's ``corrections/landfill/``)
are bin-only photos: they teach which bin without becoming a label of their own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from tests.helpers import COLORS, solid_image
from tests.pipelines.test_local_pipeline import config, make_photos
from whichbin.errors import DataError
from whichbin.inference import OnnxClassifier
from whichbin.pipelines.local import run_pipeline
from whichbin.rules import load_rules

YELLOW = (220, 220, 30)


def test_bin_folder_teaches_its_bin_without_becoming_a_label(
    tmp_path: Path, color_bundle: Path
) -> None:
    photos = make_photos(tmp_path / "photos", 14)
    (photos / "landfill").mkdir()
    for j in range(14):  # yellow items only ever corrected to landfill, never labelled
        solid_image(photos / "landfill" / f"y{j}.jpg", YELLOW, size=(64 + j % 5, 48))
    cfg = config(tmp_path, color_bundle)
    cfg.training.epochs = 300
    res = run_pipeline(cfg, [photos], None, register=False, progress=False)
    clf = OnnxClassifier(res.bundle)
    assert sorted(clf.labels) == ["organic", "plastic", "trash"]  # no "landfill" label
    yellow = np.full((48, 64, 3), YELLOW, np.uint8)
    blue = np.full((48, 64, 3), COLORS["recycling"], np.uint8)
    got = clf.predict([Image.fromarray(yellow), Image.fromarray(blue)])
    assert got[0].bin == "landfill" and got[0].label == "trash"
    assert got[1].bin == "recycling"
    # Bin-only test photos are scored at bin level with the rest.
    assert res.metrics["bin_accuracy"] > 0.9
    # The corrections are the bundle's site memory, and the evaluation computed the same
    # logits as the file (no fall-back to running every image through it).
    assert clf.meta.metrics["site_memory"]["entries"] >= 7
    # ... gated by a site-vs-stock regression, written into the graph.
    assert clf.meta.metrics["site_memory"]["domain_gate"] == 1
    graph = onnx.load(str(res.bundle)).graph
    assert {"site.dom_w", "site.dom_b"} <= {i.name for i in graph.initializer}
    metrics = json.loads((Path(res.report).parent / "metrics.json").read_text())
    assert metrics["parity"]["full_onnx_run"] is False


def test_bin_folder_with_no_label_of_its_bin_is_a_clear_error(
    tmp_path: Path, color_bundle: Path
) -> None:
    photos = make_photos(tmp_path / "photos", 10)
    for p in (photos / "organic").iterdir():
        p.unlink()
    (photos / "organic").rmdir()
    (photos / "compost").mkdir()
    for j in range(10):
        solid_image(photos / "compost" / f"g{j}.jpg", COLORS["compost"])
    with pytest.raises(DataError, match=r"bin-only photos for \['compost'\]"):
        run_pipeline(config(tmp_path, color_bundle), [photos], None, False, progress=False)


def test_unknown_label_is_a_clear_error_naming_it() -> None:
    from whichbin.errors import ConfigError

    rules = load_rules()
    assert rules.model_labels(["glass", "compost", "paper-bowl"]) == ["glass", "paper-bowl"]
    with pytest.raises(ConfigError, match="no bin for label 'keyboard'"):
        rules.model_labels(["glass", "keyboard"])


@pytest.mark.shared_data
def test_default_rule_pack_knows_every_shared_label(shared_data: Path) -> None:
    rules = load_rules()
    labels = {p.parent.name for p in shared_data.glob("*/*/*.jpg")}
    labels |= {p.parent.name for p in shared_data.glob("real/*/*/*.jpg")}
    labels -= {"takeaway", "household"}
    assert len(labels) > 20
    l2b = rules.restricted_to(sorted(labels))
    assert l2b["tissue-paper"] == "compost" and l2b["sauce-packets"] == "landfill"
    assert l2b["plastic-cup"] == "recycling" and l2b["chopsticks"] == "compost"
    assert not any(rules.is_bin_only(lab) for lab in labels)
