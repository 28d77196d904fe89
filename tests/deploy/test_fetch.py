"""fetch_artifact over a real HTTP server (whichbin web under uvicorn) and file:// URLs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry.fixtures import register
from tests.web.server import serve
from whichbin.deploy import fetch_artifact
from whichbin.errors import DeployError
from whichbin.registry.local import SqliteRegistry
from whichbin.web import create_app


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def served(registry: SqliteRegistry, color_bundle: Path) -> Iterator[tuple[str, SqliteRegistry]]:
    register(registry, color_bundle)
    registry.approve("1", by="ana")  # edges fetch approved artifacts without a login
    with serve(create_app(registry=registry)) as base:
        yield base, registry


def only_dest_left(folder: Path, dest: Path) -> bool:
    return sorted(folder.iterdir()) == ([dest] if dest.exists() else [])


def test_fetch_over_http(served: tuple[str, SqliteRegistry], tmp_path: Path) -> None:
    base, registry = served
    v = registry.get("1")
    dest = tmp_path / "edge" / "model.onnx"
    url = f"{base}/artifacts/trash-classifier/1/model.onnx"
    assert fetch_artifact(url, dest, v.sha256.upper()) == dest
    assert sha(dest) == v.sha256 and only_dest_left(dest.parent, dest)


def test_http_mismatch_and_404_leave_nothing(
    served: tuple[str, SqliteRegistry], tmp_path: Path
) -> None:
    base, _ = served
    dest = tmp_path / "edge" / "model.onnx"
    url = f"{base}/artifacts/trash-classifier/1/model.onnx"
    with pytest.raises(DeployError, match="sha256 mismatch") as e:
        fetch_artifact(url, dest, "0" * 64)
    assert url in str(e.value)
    assert not dest.exists() and only_dest_left(dest.parent, dest)

    missing = f"{base}/artifacts/trash-classifier/7/model.onnx"
    with pytest.raises(DeployError, match="HTTP 404") as e:
        fetch_artifact(missing, dest, "0" * 64)
    assert missing in str(e.value) and only_dest_left(dest.parent, dest)


def test_fetch_file_url_and_mismatch_keeps_previous_model(
    color_bundle: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "active" / "model.onnx"
    fetch_artifact(color_bundle.as_uri(), dest, sha(color_bundle))
    assert dest.read_bytes() == color_bundle.read_bytes()

    other = tmp_path / "other.onnx"
    other.write_bytes(b"a different model")
    with pytest.raises(DeployError, match="sha256 mismatch"):
        fetch_artifact(other.as_uri(), dest, sha(color_bundle)[::-1])
    assert dest.read_bytes() == color_bundle.read_bytes()  # the running model is untouched
    assert only_dest_left(dest.parent, dest)


def test_already_present_is_not_downloaded_again(color_bundle: Path, tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    dest.write_bytes(color_bundle.read_bytes())
    gone = (tmp_path / "does-not-exist.onnx").as_uri()
    assert fetch_artifact(gone, dest, sha(color_bundle)) == dest


@pytest.mark.parametrize(
    "url", ["file:///nonexistent/model.onnx", "ftp://h/model.onnx", "http://127.0.0.1:1/m.onnx"]
)
def test_unfetchable_urls_name_the_url(url: str, tmp_path: Path) -> None:
    with pytest.raises(DeployError) as e:
        fetch_artifact(url, tmp_path / "model.onnx", "0" * 64, timeout=2)
    assert url in str(e.value)
    assert list(tmp_path.iterdir()) == []
