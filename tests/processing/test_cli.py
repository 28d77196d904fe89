"""whichbin data … through the real CLI (typer's CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.processing.images import image_tree
from whichbin.cli.main import app

runner = CliRunner()


def _run(*args: str):  # noqa: ANN202
    return runner.invoke(app, ["data", *map(str, args)])


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    src = image_tree(tmp_path / "src", {"glass": 8, "paper": 6})
    (src / "paper" / "readme.jpg").write_text("plain text")
    result = _run("import", src, "--to", tmp_path / "ds", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["imported"] == 15 and doc["skipped"] == 0
    return tmp_path / "ds"


def test_check_json_shape(dataset: Path) -> None:
    result = _run("check", dataset, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert set(doc) == {"ok", "quarantined", "duplicates"}
    assert doc["ok"] == 14
    assert doc["quarantined"] == [
        {"path": "quarantine/paper/readme.jpg", "reason": doc["quarantined"][0]["reason"]}
    ]
    assert doc["quarantined"][0]["reason"].startswith("not-an-image")
    assert doc["duplicates"] == []


def test_split_then_stats_json_shape(dataset: Path) -> None:
    result = _run("split", dataset, "--val", "0.25", "--test", "0.25", "--seed", "1", "--json")
    assert result.exit_code == 0, result.output
    split = json.loads(result.stdout)
    assert sum(split["splits"].values()) == split["total"] == 14
    assert split["manifest_hash"] and len(split["manifest_hash"]) == 64
    result = _run("stats", dataset, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"total", "quarantined", "labels"}
    assert doc["total"] == 14 and doc["quarantined"] == 1
    assert set(doc["labels"]) == {"glass", "paper"}
    for counts in doc["labels"].values():
        assert set(counts) == {"train", "val", "test", "total"}
        assert counts["train"] + counts["val"] + counts["test"] == counts["total"]
        assert counts["val"] >= 1 and counts["test"] >= 1


def test_human_output(dataset: Path) -> None:
    result = _run("stats", dataset)
    assert result.exit_code == 0
    assert "glass" in result.stdout and "quarantined 0" in result.stdout


@pytest.mark.parametrize("command", ["import", "check", "split", "stats"])
def test_help_has_an_example(command: str) -> None:
    result = _run(command, "--help")
    assert result.exit_code == 0
    assert f"Example: whichbin data {command} " in result.stdout


def test_group_help_has_an_example() -> None:
    result = runner.invoke(app, ["data", "--help"])
    assert result.exit_code == 0 and "Example: whichbin data " in result.stdout


def test_user_error_names_the_file(tmp_path: Path) -> None:
    image_tree(tmp_path / "imgs", {"a": 1})
    lst = tmp_path / "imgs" / "train.lst"
    lst.write_text("0\t0\ta/a_0.jpg\n1\t0\ta/gone.jpg\n")
    result = _run("import", lst, "--to", tmp_path / "ds")
    assert result.exit_code == 1
    message = result.output.strip()
    assert len(message.splitlines()) == 1
    assert "train.lst:2: image not found" in message and "gone.jpg" in message
    assert not (tmp_path / "ds" / "samples.jsonl").exists() or (
        (tmp_path / "ds" / "samples.jsonl").read_text() == ""
    )


def test_missing_dataset_and_bad_flag_exit_1(tmp_path: Path) -> None:
    result = _run("stats", tmp_path / "nope", "--json")
    assert result.exit_code == 1 and "nope: no such dataset" in result.output
    assert result.stdout == ""
    image_tree(tmp_path / "src", {"a": 2})
    _run("import", tmp_path / "src", "--to", tmp_path / "ds")
    result = _run("split", tmp_path / "ds", "--val", "0.7")
    assert result.exit_code == 1 and "--val" in result.output


def test_usage_error_exit_2(tmp_path: Path) -> None:
    result = _run("import", tmp_path, "--to", tmp_path / "ds", "--format", "zip")
    assert result.exit_code == 2


def test_lst_with_labels_via_cli(tmp_path: Path) -> None:
    image_tree(tmp_path / "imgs", {"x": 2})
    lst = tmp_path / "imgs" / "t.lst"
    lst.write_text("0\t1.000000\tx/x_0.jpg\n1\t1.000000\tx/x_1.jpg\n")
    (tmp_path / "labels.txt").write_text("Compost\nLandfill\nRecycling\n")
    result = _run(
        "import", lst, "--labels", tmp_path / "labels.txt", "--to", tmp_path / "ds", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["labels"] == {"Landfill": 2}


def test_split_uses_the_configs_image_limits(dataset: Path, tmp_path: Path) -> None:
    config = tmp_path / "whichbin.yaml"
    config.write_text("pipeline:\n  data:\n    max_image_pixels: 1\n")
    result = _run("split", dataset, "--config", config)
    assert result.exit_code == 1
    assert "no usable images" in result.output
    assert not (dataset / "manifest.csv").exists()
