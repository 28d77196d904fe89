"""split_dataset writes the manifest; load_manifest, manifest_hash, stats, prepare_dataset."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from tests.processing.images import image_tree, photo
from whichbin.config import DataConfig
from whichbin.errors import DataError
from whichbin.processing import (
    dataset_stats,
    import_source,
    load_manifest,
    manifest_hash,
    prepare_dataset,
    split_dataset,
)
from whichbin.progress import silent_reporter


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    src = image_tree(tmp_path / "src", {"glass": 20, "paper": 14, "trash": 7})
    (src / "trash" / "broken.jpg").write_text("not an image")
    import_source(src, tmp_path / "ds", reporter=silent_reporter)
    return tmp_path / "ds"


def test_manifest_columns_sorted_and_relative(dataset: Path) -> None:
    result = split_dataset(dataset, 0.2, 0.2, 0, reporter=silent_reporter)
    with (dataset / "manifest.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "label", "split", "sha256"]
    body = rows[1:]
    assert body == sorted(body)
    assert len(body) == 41  # the broken file is quarantined, not listed
    assert all(
        r[0].startswith(f"images/{r[1]}/") and r[2] in ("train", "val", "test") for r in body
    )
    loaded = load_manifest(dataset)
    assert loaded == result.rows
    assert all(r.path.is_absolute() and r.path.is_file() for r in loaded)
    assert result.manifest_hash == manifest_hash(dataset)
    # Per label, a group goes to test while its centre is below test * n: glass 20 → 4/4,
    # paper 14 → 3 test (centres 0.5..2.5 < 2.8) and 3 val, trash 7 → 1 test, 2 val.
    assert result.counts() == {"train": 24, "val": 9, "test": 8}


def test_manifest_hash_is_identity(dataset: Path) -> None:
    h = split_dataset(dataset, 0.2, 0.2, 0, reporter=silent_reporter).manifest_hash
    assert split_dataset(dataset, 0.2, 0.2, 0, reporter=silent_reporter).manifest_hash == h
    assert split_dataset(dataset, 0.2, 0.2, 1, reporter=silent_reporter).manifest_hash != h
    assert split_dataset(dataset, 0.2, 0.2, 0, reporter=silent_reporter).manifest_hash == h
    # Same content written differently (CRLF, reordered rows) → same identity.
    m = dataset / "manifest.csv"
    lines = m.read_text().splitlines()
    m.write_bytes(("\r\n".join([lines[0], *reversed(lines[1:])]) + "\r\n").encode())
    assert manifest_hash(dataset) == h


def test_manifest_errors_name_the_file(tmp_path: Path, dataset: Path) -> None:
    with pytest.raises(DataError, match=r"manifest\.csv: no manifest; run: whichbin data split"):
        manifest_hash(dataset)
    (dataset / "manifest.csv").write_text("file,class\n")
    with pytest.raises(DataError, match=r"manifest\.csv: header must be path,label,split,sha256"):
        load_manifest(dataset)


def test_stats(dataset: Path) -> None:
    before = dataset_stats(dataset)
    assert before["labels"]["glass"] == {"train": 0, "val": 0, "test": 0, "total": 20}
    split_dataset(dataset, 0.2, 0.2, 0, reporter=silent_reporter)
    stats = dataset_stats(dataset)
    assert stats["total"] == 41 and stats["quarantined"] == 1
    assert stats["labels"]["glass"] == {"train": 12, "val": 4, "test": 4, "total": 20}
    assert sum(c["total"] for c in stats["labels"].values()) == 41


def test_adding_images_moves_few(tmp_path: Path) -> None:
    src = image_tree(tmp_path / "src", {"a": 60, "b": 60})
    ds = tmp_path / "ds"
    import_source(src, ds, reporter=silent_reporter)
    before = {r.path: r.split for r in split_dataset(ds, reporter=silent_reporter).rows}
    import_source(
        image_tree(tmp_path / "new", {"a": 3, "b": 3}, seed=77_000), ds, reporter=silent_reporter
    )
    result = split_dataset(ds, reporter=silent_reporter)
    after = {r.path: r.split for r in result.rows}
    moved = sum(after[p] != s for p, s in before.items())
    assert moved == result.changed
    assert moved <= 3


def test_prepare_dataset(tmp_path: Path) -> None:
    folder = image_tree(tmp_path / "folder", {"glass": 12, "paper": 8})
    other = image_tree(tmp_path / "other", {"glass": 2, "rare": 3}, seed=9000)
    csv_src = tmp_path / "list.csv"
    csv_src.write_text(
        "path,label\n"
        + "".join(
            f"{p.relative_to(tmp_path).as_posix()},{p.parent.name}\n"
            for p in sorted(other.rglob("*.jpg"))
        )
    )
    photo(tmp_path / "lst" / "paper" / "p.jpg", seed=4242)
    (tmp_path / "lst" / "x.lst").write_text("0\t0\tpaper/p.jpg\n")
    ds = tmp_path / "ds"
    cfg = DataConfig(min_per_label=6, val=0.2, test=0.2)

    prepared = prepare_dataset([folder, csv_src, tmp_path / "lst" / "x.lst"], ds, cfg)

    assert prepared.root == ds
    assert prepared.labels == ["glass", "paper"]
    assert prepared.skipped_labels == {"rare": 3}
    assert sorted({r.label for r in prepared.rows}) == ["glass", "paper"]
    assert len(prepared.rows) == 14 + 9
    assert all(r.path.is_absolute() and r.path.is_file() for r in prepared.rows)
    assert prepared.manifest_hash == manifest_hash(ds)
    assert len(load_manifest(ds)) == 26  # rare labels stay in the dataset and manifest
    assert prepared.quarantined == [] and prepared.duplicates == []

    # Re-run: nothing imported, nothing decoded, same identity; the dataset itself as source.
    cache_lines = len((ds / ".cache/check.jsonl").read_text().splitlines())
    t = time.monotonic()
    again = prepare_dataset([folder, csv_src, tmp_path / "lst" / "x.lst", ds], ds, cfg)
    assert time.monotonic() - t < 5
    assert again.manifest_hash == prepared.manifest_hash
    assert [i.imported for i in again.imports] == [0, 0, 0]
    assert len((ds / ".cache/check.jsonl").read_text().splitlines()) == cache_lines

    # A prepared dataset is a valid source for another.
    third = prepare_dataset([ds], tmp_path / "ds2", cfg)
    assert [r.sha256 for r in third.rows] == [r.sha256 for r in prepared.rows]


def test_prepare_needs_something(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a dataset yet"):
        prepare_dataset([], tmp_path / "ds", DataConfig())


@pytest.mark.slow
def test_prepare_shared_data(tmp_path: Path, shared_data: Path) -> None:
    """The real 6,185 images: first run, then an unchanged re-run that must take seconds."""
    sources = [shared_data / "trashnet", shared_data / "extra"]
    first = prepare_dataset(sources, tmp_path / "ds", DataConfig(), reporter=silent_reporter)
    assert len(first.rows) + sum(first.skipped_labels.values()) == 2498 + 3687
    assert first.quarantined == []
    assert "trash" in first.labels and "organic" in first.labels
    t = time.monotonic()
    again = prepare_dataset(sources, tmp_path / "ds", DataConfig(), reporter=silent_reporter)
    assert time.monotonic() - t < 15
    assert again.manifest_hash == first.manifest_hash


def test_one_split_fraction_rule_for_the_library_the_cli_and_the_config(
    dataset: Path, tmp_path: Path
) -> None:
    from pydantic import ValidationError
    from typer.testing import CliRunner

    from whichbin.cli.main import app
    from whichbin.errors import ConfigError
    from whichbin.processing import SplitSample, split_samples

    with pytest.raises(ConfigError, match="together below 0.8"):
        split_dataset(dataset, 0.45, 0.4, 0, reporter=silent_reporter)
    with pytest.raises(ValueError, match="together below 0.8"):
        split_samples([SplitSample("k", "a", "g")], 0.45, 0.4, 0)
    with pytest.raises(ValidationError, match="together below 0.8"):
        DataConfig(val=0.45, test=0.4)
    res = CliRunner().invoke(app, ["data", "split", str(dataset), "--val", "0.45", "--test", "0.4"])
    assert res.exit_code == 1 and "together below 0.8" in res.output
    config = tmp_path / "whichbin.yaml"
    config.write_text("pipeline: {data: {val: 0.45, test: 0.4}}\n")
    res = CliRunner().invoke(app, ["config", "check", str(config)])
    assert res.exit_code == 1 and "pipeline.data: " in res.output
    assert "together below 0.8" in res.output
