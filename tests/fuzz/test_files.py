"""Fuzzing every file parser a user hands whichbin: CSV and .lst sources, labels files,
label maps, the config YAML and rule packs. Whatever the bytes, the answer is a result or
one WhichbinError line naming the file, never another exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.strategies import FUZZ, json_values, messy_bytes
from tests.processing.images import image_tree
from whichbin.config import load_settings
from whichbin.errors import WhichbinError
from whichbin.processing.sources import load_label_list, load_label_map, read_source
from whichbin.rules import load_rules


def one_line(e: WhichbinError, path: Path) -> None:
    message = str(e)
    assert "\n" not in message and "\r" not in message, message
    assert str(path) in message or "--" in message, message


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = image_tree(tmp_path_factory.mktemp("fuzz") / "src", {"glass": 1})
    (root / "labels.txt").write_text("glass\npaper\n")
    return root


@pytest.mark.parametrize("name", ["list.csv", "train.lst", "labels.lst"])
@FUZZ
@given(content=messy_bytes())
def test_sources(tree: Path, name: str, content: bytes) -> None:
    path = tree / name
    path.write_bytes(content)
    labels = tree / "labels.txt" if name == "labels.lst" else None
    try:
        items = read_source(path, labels_file=labels)
    except WhichbinError as e:
        one_line(e, path)
        return
    for item in items:  # whatever was accepted is an image file inside the source
        assert item.path.resolve().is_relative_to(tree.resolve()) and item.path.is_file()


@FUZZ
@given(content=messy_bytes())
def test_labels_file(tree: Path, content: bytes) -> None:
    path = tree / "fuzz-labels.txt"
    path.write_bytes(content)
    try:
        names = load_label_list(path)
    except WhichbinError as e:
        one_line(e, path)
        return
    assert all(n and "/" not in n and "\x00" not in n for n in names)


@FUZZ
@given(content=messy_bytes() | json_values().map(lambda v: repr(v).encode()))
def test_yaml_files(tree: Path, content: bytes) -> None:
    path = tree / "fuzz.yaml"
    path.write_bytes(content)
    for load in (load_label_map, load_rules, load_settings):
        try:
            load(path)
        except WhichbinError as e:
            one_line(e, path)


@FUZZ
@given(
    doc=st.dictionaries(
        st.sampled_from(["name", "version", "threshold", "bins", "pipeline", "x"]),
        json_values(),
        max_size=4,
    )
)
def test_rule_pack_and_config_shapes(tree: Path, doc: dict[str, object]) -> None:
    import yaml

    path = tree / "shape.yaml"
    path.write_text(yaml.safe_dump(doc))
    for load in (load_rules, load_settings):
        try:
            load(path)
        except WhichbinError as e:
            one_line(e, path)
