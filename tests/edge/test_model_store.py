"""The model store: artifacts by sha256, current.json, download reuse and pruning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import make_color_bundle
from whichbin.edge.model_store import CURRENT_FILE, ModelStore
from whichbin.errors import DeployError
from whichbin.inference import sha256_file


def copy_fetch(calls: list[str]):  # noqa: ANN201
    """A fetch that copies a local file (the URL is its path) and counts its calls."""

    def fetch(url: str, dest: Path, sha: str, size: int | None = None) -> Path:
        calls.append(url)
        dest.write_bytes(Path(url).read_bytes())
        return dest

    return fetch


def test_download_remember_restore_and_prune(tmp_path: Path) -> None:
    calls: list[str] = []
    store = ModelStore(tmp_path / "models", fetch=copy_fetch(calls))
    assert store.remembered() is None
    bundles = [make_color_bundle(tmp_path / f"v{i}.onnx", version=f"test/{i}") for i in (1, 2, 3)]
    shas = [sha256_file(b) for b in bundles]

    path = store.download(str(bundles[0]), shas[0])
    assert path == store.path(shas[0]) and path.name == f"{shas[0]}.onnx"
    assert store.download(str(bundles[0]), shas[0]) == path  # already here: not fetched again
    assert calls == [str(bundles[0])]

    store.remember("test/1", shas[0], path, "file:///v1.onnx")
    record = json.loads((store.dir / CURRENT_FILE).read_text())
    assert record["version"] == "test/1" and record["file"] == path.name
    stored = store.remembered()
    assert stored is not None and (stored.version, stored.sha256) == ("test/1", shas[0])

    for b, sha in zip(bundles[1:], shas[1:], strict=True):
        store.download(str(b), sha)
    (store.dir / "mine.onnx").write_bytes(b"not the store's")
    store.prune({shas[1], shas[2]})
    assert sorted(p.name for p in store.dir.glob("*.onnx")) == sorted(
        ["mine.onnx", f"{shas[1]}.onnx", f"{shas[2]}.onnx"]
    )
    with pytest.raises(DeployError, match=CURRENT_FILE):  # its artifact was pruned
        store.remembered()


def test_check_deletes_an_artifact_whose_hash_differs(tmp_path: Path) -> None:
    junk = tmp_path / f"{'0' * 64}.onnx"
    junk.write_bytes(b"junk")
    with pytest.raises(DeployError, match="sha256 is"):
        ModelStore.check(junk, "0" * 64)
    assert not junk.exists()


def test_an_unreadable_record_names_the_file(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    (tmp_path / CURRENT_FILE).write_text("{not json")
    with pytest.raises(DeployError, match=CURRENT_FILE):
        store.remembered()
