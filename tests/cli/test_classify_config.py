"""``whichbin classify`` and ``whichbin config check`` (help texts: tests/cli/test_options.py)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.helpers import COLORS, solid_image
from whichbin.cli.main import app

runner = CliRunner()


def test_classify_json_lines_with_a_model(tmp_path: Path, color_bundle: Path) -> None:
    for b, rgb in COLORS.items():
        solid_image(tmp_path / f"{b}.jpg", rgb)
    res = runner.invoke(app, ["classify", "--json", "--model", str(color_bundle), str(tmp_path)])
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert {Path(r["path"]).stem: r["bin"] for r in records} == {b: b for b in COLORS}
    for r in records:
        assert set(r) == {"path", "bin", "label", "confidence", "decision", "top_k"}
        assert r["decision"] == "decided" and r["top_k"][0]["label"] == r["label"]


def test_classify_default_model_on_trashnet(shared_data: Path) -> None:
    photos = [
        shared_data / "trashnet" / "glass" / "glass1.jpg",
        shared_data / "trashnet" / "cardboard" / "cardboard10.jpg",
    ]
    res = runner.invoke(app, ["classify", "--json", *map(str, photos)])
    assert res.exit_code == 0, res.output
    bins = [json.loads(line)["bin"] for line in res.stdout.splitlines()]
    assert bins == ["recycling", "recycling"]


def test_classify_says_noise_is_unlike_its_training_photos(
    tmp_path: Path, shared_data: Path
) -> None:
    import numpy as np
    from PIL import Image

    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (224, 224, 3), np.uint8)).save(noise)
    glass = shared_data / "trashnet" / "glass" / "glass1.jpg"
    res = runner.invoke(app, ["classify", "--json", str(noise), str(glass)])
    assert res.exit_code == 0, res.output
    odd, photo = (json.loads(line) for line in res.stdout.splitlines())
    assert odd["decision"] == "unsure" and photo["decision"] == "decided"
    assert odd["familiarity"] < photo["familiarity"]
    plain = runner.invoke(app, ["classify", str(noise)])
    assert "unlike anything it was trained on" in plain.output


def test_classify_names_a_bad_file(tmp_path: Path, color_bundle: Path) -> None:
    bad = tmp_path / "note.jpg"
    bad.write_text("not an image")
    res = runner.invoke(app, ["classify", "--model", str(color_bundle), str(bad)])
    assert res.exit_code == 1
    assert "note.jpg" in res.output and "Traceback" not in res.output


def test_config_check_names_the_key(tmp_path: Path) -> None:
    good = tmp_path / "ok.yaml"
    good.write_text("training: {epochs: 10}\ngate: {min_bin_accuracy: 0.9}\n")
    res = runner.invoke(app, ["config", "check", "--json", str(good)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["pipeline"]["training"]["epochs"] == 10
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {epochz: 10}\n")
    res = runner.invoke(app, ["config", "check", str(bad)])
    assert res.exit_code == 1
    assert "bad.yaml" in res.output and "training.epochz" in res.output


def test_config_check_validates_the_edge_section(tmp_path: Path) -> None:
    bad = tmp_path / "edge.yaml"
    bad.write_text("edge: {decision: {bogus: 1}}\n")
    res = runner.invoke(app, ["config", "check", str(bad)])
    assert res.exit_code == 1
    assert "edge.decision.bogus" in res.output


def test_classify_takes_a_registry_version(tmp_path: Path, color_bundle: Path) -> None:
    from tests.registry.fixtures import register
    from whichbin.registry.local import SqliteRegistry

    reg = SqliteRegistry(tmp_path / "registry")
    register(reg, color_bundle)
    photos = tmp_path / ("a-long-folder-name-" * 6)
    photos.mkdir()
    for b, rgb in COLORS.items():
        solid_image(photos / f"{b}.jpg", rgb)
    by_file = runner.invoke(app, ["classify", "--json", "--model", str(color_bundle), str(photos)])
    for model in ("trash-classifier/1", "1"):
        args = ["classify", "--json", "--model", model, "--registry", str(reg.root), str(photos)]
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert res.stdout == by_file.stdout

    res = runner.invoke(
        app, ["classify", "--model", "trash-classifier/1", "--registry", str(reg.root), str(photos)]
    )  # human output on stdout, one line per photo, paths whole
    assert res.exit_code == 0, res.output
    assert f"{photos / 'compost.jpg'}: compost" in res.stdout.splitlines()[0]

    for missing, registry in (("trash-classifier/9", reg.root), ("2", tmp_path / "nowhere")):
        args = ["classify", "--model", missing, "--registry", str(registry), str(photos)]
        res = runner.invoke(app, args)
        assert res.exit_code == 1 and res.stdout == ""
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
        assert f"--model {missing}" in res.stderr and str(registry) in res.stderr


def test_top_k_must_be_at_least_one(tmp_path: Path, color_bundle: Path) -> None:
    solid_image(tmp_path / "a.jpg", COLORS["compost"])
    for k in ("0", "-2"):
        res = runner.invoke(
            app, ["classify", "--top-k", k, "--model", str(color_bundle), str(tmp_path)]
        )
        assert res.exit_code == 2 and "--top-k" in res.output


def test_a_folder_without_images_lists_the_suffixes_in_order(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no photos here")
    res = runner.invoke(app, ["classify", str(tmp_path)])
    assert res.exit_code == 1
    assert ".bmp, .gif, .jpeg, .jpg, .png, .tif, .tiff, .webp" in res.output
