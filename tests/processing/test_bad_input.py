"""Every bad input is one line (issue 13, item 6): oversized images are refused before they
are decoded, imports never reach outside their source, and malformed lists, labels and YAML
name the file. Each test here failed on main before the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.processing.images import huge_png, image_tree, noisy_jpeg_bytes, photo
from whichbin.cli.main import app
from whichbin.errors import DataError
from whichbin.imageio import ImageError, ImageLimits, load_rgb, open_image
from whichbin.processing.check import check_dataset
from whichbin.processing.ingest import import_source
from whichbin.processing.sources import read_source
from whichbin.progress import silent_reporter

runner = CliRunner()


def one_line_error(res: Result, *needles: str) -> str:
    """The command failed with exit 1 and one ``Error:`` line naming ``needles``."""
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# -- images: size-checked before decoding ------------------------------------------------
def test_a_decompression_bomb_is_one_line_everywhere(tmp_path: Path, color_bundle: Path) -> None:
    bomb = huge_png(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(ImageError, match=r"bomb\.png: too-large: 400\.0 MP"):
        load_rgb(bomb)
    res = runner.invoke(app, ["classify", "--json", "--model", str(color_bundle), str(bomb)])
    one_line_error(res)
    assert json.loads(res.stdout)["error"].startswith("too-large")


def test_an_image_just_under_pillows_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    src = image_tree(tmp_path / "src", {"glass": 3})
    huge_png(src / "glass" / "huge.png", 13000, 13000)  # 169 MP: Pillow would decode it
    import_source(src, tmp_path / "ds", reporter=silent_reporter)
    report = check_dataset(tmp_path / "ds", reporter=silent_reporter)
    (q,) = report.new_quarantined
    assert q["path"].endswith("huge.png")
    assert q["reason"].startswith("too-large: 13000x13000 px (169.0 MP)")
    assert report.ok == 3


def test_limits_are_configurable_and_a_recheck_honours_new_ones(tmp_path: Path) -> None:
    src = image_tree(tmp_path / "src", {"glass": 3})
    photo(src / "glass" / "big.png", seed=9, size=(400, 300))  # 120 000 px, ~360 kB
    import_source(src, tmp_path / "ds", reporter=silent_reporter)
    res = runner.invoke(app, ["data", "check", str(tmp_path / "ds"), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["quarantined"] == []
    res = runner.invoke(
        app, ["data", "check", str(tmp_path / "ds"), "--json", "--max-image-pixels", "100000"]
    )
    assert res.exit_code == 0, res.output
    (q,) = json.loads(res.stdout)["quarantined"]
    assert (
        q["reason"].startswith("too-large: 400x300 px") and "data.max_image_pixels" in q["reason"]
    )
    with pytest.raises(ImageError, match="too-large: .* MB .*data.max_image_bytes"):
        load_rgb(src / "glass" / "glass_0.jpg", ImageLimits(max_bytes=100))
    res = runner.invoke(app, ["data", "check", str(tmp_path / "ds"), "--max-image-bytes", "0"])
    one_line_error(res, "--max-image-bytes")


def test_decode_errors_inside_open_image_are_image_errors(tmp_path: Path) -> None:
    cut = tmp_path / "cut.jpg"
    data = noisy_jpeg_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(ImageError, match=r"cut\.jpg: truncated: "), open_image(cut) as im:
        im.load()
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_rgb(empty)


# -- classify: one bad file does not stop the batch ---------------------------------------
def test_classify_reports_a_bad_file_and_goes_on(tmp_path: Path, color_bundle: Path) -> None:
    from tests.helpers import COLORS, solid_image

    solid_image(tmp_path / "a.jpg", COLORS["compost"])
    (tmp_path / "b.jpg").write_text("not an image")
    solid_image(tmp_path / "c.jpg", COLORS["recycling"])
    res = runner.invoke(app, ["classify", "--json", "--model", str(color_bundle), str(tmp_path)])
    one_line_error(res, "1 of 3")
    a, b, c = (json.loads(line) for line in res.stdout.splitlines())
    assert a["bin"] == "compost" and c["bin"] == "recycling"
    assert set(b) == {"path", "error"} and b["error"].startswith("not-an-image")


def test_classify_of_an_empty_folder_is_an_error(tmp_path: Path, color_bundle: Path) -> None:
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["classify", "--model", str(color_bundle), str(tmp_path / "empty")])
    one_line_error(res, "empty", "no images")


# -- import never reaches outside its source --------------------------------------------
@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    return image_tree(tmp_path / "src", {"glass": 2})


def test_a_list_cannot_import_files_outside_its_root(tree: Path, tmp_path: Path) -> None:
    labels = tree / "labels.txt"
    labels.write_text("glass\n")
    lst = tree / "train.lst"
    lst.write_text("0\t0\tglass/glass_0.jpg\n1\t0\t../../../../../../etc/passwd\n")
    res = runner.invoke(
        app, ["data", "import", str(lst), "--labels", str(labels), "--to", str(tmp_path / "ds")]
    )
    one_line_error(res, "train.lst:2", "outside")
    csv_file = tree / "list.csv"
    csv_file.write_text("path,label\nglass/glass_0.jpg,glass\n/etc/passwd,glass\n")
    with pytest.raises(DataError, match=r"list\.csv:3: /etc/passwd is outside"):
        read_source(csv_file)
    assert not (tmp_path / "ds").exists()


def test_a_list_cannot_import_non_images_even_inside_its_root(tree: Path) -> None:
    (tree / "notes.txt").write_text("secret")
    csv_file = tree / "list.csv"
    csv_file.write_text("glass/glass_0.jpg,glass\nnotes.txt,glass\n")
    with pytest.raises(DataError, match=r"list\.csv:2: .*notes\.txt is not an image file"):
        read_source(csv_file)


def test_a_link_out_of_the_source_is_refused(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "private.jpg"
    photo(outside, seed=3)
    os.symlink(outside, tree / "glass" / "linked.jpg")
    with pytest.raises(DataError, match=r"linked\.jpg is outside"):
        read_source(tree)
    ds = tmp_path / "ds"
    (tree / "glass" / "linked.jpg").unlink()
    import_source(tree, ds, reporter=silent_reporter)
    rows = [json.loads(x) for x in (ds / "samples.jsonl").read_text().splitlines()]
    rows[0]["path"] = "../private.jpg"
    (ds / "samples.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError, match=r"samples\.jsonl:1: .*private\.jpg is outside"):
        read_source(ds)


# -- lists, labels and YAML: one line naming the file -----------------------------------
LATIN1 = "glass/glass_0.jpg,verre cass\xe9\n".encode("latin-1")


@pytest.mark.parametrize(
    ("name", "content", "extra", "needle"),
    [
        ("list.csv", LATIN1, [], "list.csv: CSV file is not UTF-8"),
        ("train.lst", b"0\t0\tglass/\xff.jpg\n", [], "train.lst: .lst file is not UTF-8"),
        ("train.lst", b"0\t0\tglass/glass_0.jpg\n", ["--labels", "labels.bin"], "labels.bin"),
        ("train.lst", b"0\tnan\tglass/glass_0.jpg\n", ["--labels", "labels.txt"], "label index"),
        ("train.lst", b"0\tinf\tglass/glass_0.jpg\n", ["--labels", "labels.txt"], "label index"),
        ("list.csv", b"glass/glass_0.jpg,gl\x00ass\n", [], "list.csv:1: invalid label"),
        ("list.csv", b"glass/glass_0.jpg\x00,glass\n", [], "list.csv:1: path"),
        ("list.csv", b"glass/glass_0.jpg,glass\n", ["--map", "map.yaml"], "map.yaml"),
    ],
)
def test_malformed_lists_are_one_line(
    tree: Path, tmp_path: Path, name: str, content: bytes, extra: list[str], needle: str
) -> None:
    (tree / name).write_bytes(content)
    (tree / "labels.txt").write_text("glass\n")
    (tree / "labels.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    (tree / "map.yaml").write_bytes(b"\x00\x01\x02 binary: \xff\xfe")
    args = [a if a.startswith("--") else str(tree / a) for a in extra]
    res = runner.invoke(
        app, ["data", "import", str(tree / name), "--to", str(tmp_path / "ds"), *args]
    )
    one_line_error(res, needle)


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", b"gate: {when: 2001-13-45}\n", b"\x00\x01"],
)
def test_binary_or_impossible_yaml_is_one_line(
    tmp_path: Path, content: bytes, color_bundle: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    one_line_error(runner.invoke(app, ["config", "check", str(bad)]), "bad.yaml")
    photo(tmp_path / "a.jpg", seed=1)
    res = runner.invoke(
        app,
        ["classify", "--model", str(color_bundle), "--rules", str(bad), str(tmp_path / "a.jpg")],
    )
    one_line_error(res, "bad.yaml")
