"""Reading sources (.lst, CSV, folders, datasets) and copying them into a dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.processing.images import image_tree, photo
from whichbin.errors import DataError
from whichbin.processing.ingest import import_source
from whichbin.processing.layout import DatasetDir
from whichbin.processing.sources import load_label_map, read_source
from whichbin.progress import silent_reporter


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def _recipe_lst(tmp_path: Path) -> tuple[Path, Path]:
    """The recipe's layout: images/<Class>/<file>, train.lst written by im2rec, labels.txt."""
    root = image_tree(tmp_path / "images", {"Compost": 2, "Landfill": 2, "Recycling": 3})
    labels = ["Compost", "Landfill", "Recycling"]
    lines = []
    for idx, f in enumerate(sorted(root.rglob("*.jpg"))):
        rel = f.relative_to(root).as_posix()
        lines.append(f"{idx}\t{labels.index(f.parent.name):f}\t{rel}\n")  # im2rec: 0.000000
    lst = root / "train.lst"
    lst.write_text("".join(lines))
    labels_txt = tmp_path / "labels.txt"
    labels_txt.write_text("\n".join(labels) + "\n")
    return lst, labels_txt


def test_lst_with_labels_file(tmp_path: Path) -> None:
    lst, labels_txt = _recipe_lst(tmp_path)
    # Name the classes differently in labels.txt to prove the index is what is used.
    labels_txt.write_text("compost\nlandfill\nrecycling\n")
    items = read_source(lst, labels_file=labels_txt)
    got = sorted((i.path.parent.name, i.label) for i in items)
    assert (
        got
        == [("Compost", "compost")] * 2
        + [("Landfill", "landfill")] * 2
        + [("Recycling", "recycling")] * 3
    )
    assert all(i.path.is_absolute() and i.path.is_file() for i in items)


def test_lst_without_labels_uses_first_folder(tmp_path: Path) -> None:
    lst, _ = _recipe_lst(tmp_path)
    report = import_source(lst, tmp_path / "ds", reporter=silent_reporter)
    assert report.imported == 7
    assert report.labels == {"Compost": 2, "Landfill": 2, "Recycling": 3}
    assert sorted(p.name for p in (tmp_path / "ds/images/Recycling").iterdir()) == [
        "Recycling_0.jpg",
        "Recycling_1.jpg",
        "Recycling_2.jpg",
    ]


def test_lst_with_root_and_multi_label_columns(tmp_path: Path) -> None:
    root = image_tree(tmp_path / "imgs", {"a": 1, "b": 1})
    lst = tmp_path / "elsewhere" / "x.lst"
    lst.parent.mkdir()
    lst.write_text("0\t1\t0.5\ta/a_0.jpg\n1\t0\t0.5\tb/b_0.jpg\n")  # extra label columns
    (tmp_path / "l.txt").write_text("zero\none\n")
    items = read_source(lst, labels_file=tmp_path / "l.txt", root=root)
    assert sorted((i.path.name, i.label) for i in items) == [
        ("a_0.jpg", "one"),
        ("b_0.jpg", "zero"),
    ]


def test_lst_errors_name_file_and_line(tmp_path: Path) -> None:
    lst, labels_txt = _recipe_lst(tmp_path)
    text = lst.read_text().splitlines()
    cases = [  # (the .lst's lines, --labels, the error)
        (
            text[:2] + ["9\t0\tCompost/missing.jpg"] + text[2:],
            None,
            r"3: image not found: .*missing\.jpg",
        ),
        (["0\t7.000000\tCompost/Compost_0.jpg"], labels_txt, r"1: label index 7\.000000"),
        (["0\t0\tflat.jpg"], None, r"1: .*no folder.*--labels"),
        (["just one column"], None, r"1: expected index<TAB>"),
    ]
    for lines, labels, error in cases:
        lst.write_text("\n".join(lines) + "\n")
        with pytest.raises(DataError, match=r"train\.lst:" + error):
            read_source(lst, labels_file=labels)


def test_csv_with_and_without_header(tmp_path: Path) -> None:
    image_tree(tmp_path / "src", {"glass": 2, "paper": 1})
    rows = [
        "src/glass/glass_0.jpg,glass",
        "src/glass/glass_1.jpg,glass",
        "src/paper/paper_0.jpg,paper",
    ]
    with_header = tmp_path / "with.csv"
    with_header.write_text("label,path\n" + "\n".join(",".join(r.split(",")[::-1]) for r in rows))
    no_header = tmp_path / "without.csv"
    no_header.write_text("\n".join(rows) + "\n")
    for f in (with_header, no_header):
        items = read_source(f)
        assert sorted((i.path.name, i.label) for i in items) == [
            ("glass_0.jpg", "glass"),
            ("glass_1.jpg", "glass"),
            ("paper_0.jpg", "paper"),
        ]
    bad = tmp_path / "bad.csv"
    bad.write_text("src/glass/glass_0.jpg,glass\nsrc/glass/glass_1.jpg\n")
    with pytest.raises(DataError, match=r"bad\.csv:2: expected path,label"):
        read_source(bad)


def test_folder_import_copies_and_never_touches_source(tmp_path: Path) -> None:
    src = image_tree(tmp_path / "src", {"glass": 3, "paper": 2})
    (src / "glass" / "notes.txt").write_text("not an image suffix: ignored")
    before = _snapshot(src)
    report = import_source(src, tmp_path / "ds", reporter=silent_reporter)
    assert (report.imported, report.skipped) == (5, 0)
    assert _snapshot(src) == before
    ds = DatasetDir(tmp_path / "ds")
    samples = ds.load_samples()
    assert sorted(s.path for s in samples) == sorted(
        f"images/{p.parent.name}/{p.name}" for p in src.rglob("*.jpg")
    )
    s = samples[0]
    assert (ds.root / s.path).read_bytes() == Path(s.source).read_bytes()
    assert len(s.sha256) == 64


def test_reimport_is_idempotent_and_collisions_are_deterministic(tmp_path: Path) -> None:
    a = image_tree(tmp_path / "a", {"glass": 2})
    b = tmp_path / "b"
    photo(b / "glass" / "glass_0.jpg", seed=999)  # same name, different picture
    ds = tmp_path / "ds"
    import_source(a, ds, reporter=silent_reporter)
    again = import_source(a, ds, reporter=silent_reporter)
    assert (again.imported, again.skipped) == (0, 2)
    other = import_source(b, ds, reporter=silent_reporter)
    assert other.imported == 1
    names = sorted(p.name for p in (ds / "images" / "glass").iterdir())
    assert len(names) == 3 and "glass_0.jpg" in names
    renamed = next(n for n in names if n not in ("glass_0.jpg", "glass_1.jpg"))
    digest = next(s.sha256 for s in DatasetDir(ds).load_samples() if s.path.endswith(renamed))
    assert renamed == f"glass_0-{digest[:8]}.jpg"


def test_same_bytes_under_two_labels_kept_once(tmp_path: Path) -> None:
    src = image_tree(tmp_path / "src", {"glass": 1})
    (src / "plastic").mkdir()
    os.link(src / "glass" / "glass_0.jpg", src / "plastic" / "copy.jpg")
    report = import_source(src, tmp_path / "ds", reporter=silent_reporter)
    assert (report.imported, report.skipped) == (1, 1)
    assert report.conflicts and report.conflicts[0]["kept"] == "glass"


def test_label_map_renames(tmp_path: Path) -> None:
    src = image_tree(tmp_path / "src", {"Compost": 1, "Recycling": 1})
    m = tmp_path / "map.yaml"
    m.write_text("Compost: organic\nRecycling: plastic\n")
    report = import_source(
        src, tmp_path / "ds", mapping=load_label_map(m), reporter=silent_reporter
    )
    assert report.labels == {"organic": 1, "plastic": 1}
    assert (tmp_path / "ds/images/organic/Compost_0.jpg").is_file()


def test_label_map_errors_name_the_file(tmp_path: Path) -> None:
    m = tmp_path / "map.yaml"
    m.write_text("- just\n- a list\n")
    with pytest.raises(DataError, match=r"map\.yaml: label map must be"):
        load_label_map(m)
    m.write_text("a: ../escape\n")
    with pytest.raises(DataError, match=r"map\.yaml: a: invalid label"):
        load_label_map(m)


def test_prepared_dataset_as_source(tmp_path: Path) -> None:
    src = image_tree(tmp_path / "src", {"glass": 2, "paper": 2})
    import_source(src, tmp_path / "ds1", reporter=silent_reporter)
    report = import_source(tmp_path / "ds1", tmp_path / "ds2", reporter=silent_reporter)
    assert report.imported == 4
    with pytest.raises(DataError, match="is the dataset itself"):
        import_source(tmp_path / "ds1", tmp_path / "ds1")


def test_source_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope: no such file"):
        read_source(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no images found"):
        read_source(tmp_path / "empty")
    odd = tmp_path / "list.txt"
    odd.write_text("x")
    with pytest.raises(DataError, match=r"list\.txt: cannot tell the format"):
        read_source(odd)
