"""Safe fetching: the URL policy, the signed size cap, no partial file ever left behind."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from whichbin.config import FetchPolicy
from whichbin.deploy import fetch as fetch_module
from whichbin.deploy.fetch import FetchRefused, check_url, fetch_artifact
from whichbin.errors import DeployError

ZERO = "0" * 64


class _Endless(http.server.BaseHTTPRequestHandler):
    """/endless: zeros until the client hangs up (no length); /liar: says 10 bytes, sends
    more; /big: announces 1 GB; /redirect: to http://127.0.0.2/ (not allowed)."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.2:1/m.onnx")
            self.end_headers()
            return
        self.send_response(200)
        if self.path == "/big":
            self.send_header("Content-Length", str(10**9))
        self.end_headers()
        try:
            for _ in range(20000):  # 1.3 GB at most: the client must stop long before
                self.wfile.write(b"\0" * 65536)
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture()
def endless() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def edge_policy(tmp_path: Path, **kw: object) -> FetchPolicy:
    return FetchPolicy(file_root=tmp_path / "artifacts", http_hosts=["127.0.0.1"], **kw)  # type: ignore[arg-type]


def test_dev_zero_is_refused_and_nothing_is_left_on_disk(tmp_path: Path) -> None:
    dest = tmp_path / "models" / "m.onnx"
    with pytest.raises(FetchRefused, match="refused"):
        fetch_artifact("file:///dev/zero", dest, ZERO, policy=edge_policy(tmp_path), size=100)
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []
    # Even a policy whose file_root is / never reads a device: not a regular file.
    with pytest.raises(FetchRefused, match="not a regular file"):
        fetch_artifact("file:///dev/zero", dest, ZERO, policy=FetchPolicy(file_root=Path("/")))
    assert list((tmp_path / "models").iterdir()) == []


def test_files_outside_the_root_are_refused_without_reading_them(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "link").symlink_to("/etc/hostname")
    policy = edge_policy(tmp_path)
    for url in (
        "file:///etc/hostname",
        (root / "link").as_uri(),  # a symlink out of the root
        f"file://{root}/../../../../etc/hostname",
    ):
        with pytest.raises(FetchRefused, match="not under edge.security.fetch.file_root") as e:
            fetch_artifact(url, tmp_path / "m.onnx", ZERO, policy=policy)
        assert "sha256" not in str(e.value) and "bytes" not in str(e.value)  # nothing leaked
    ok = root / "m.onnx"
    ok.write_bytes(b"model")
    sha = hashlib.sha256(b"model").hexdigest()
    fetch_artifact(ok.as_uri(), tmp_path / "m.onnx", sha, policy=policy, size=5)


def test_file_refused_without_a_root_and_http_only_to_listed_hosts() -> None:
    default = FetchPolicy()
    with pytest.raises(FetchRefused, match="file_root"):
        check_url("file:///srv/registry/m.onnx", default)
    with pytest.raises(FetchRefused, match="http_hosts"):
        check_url("http://registry.local:8080/m.onnx", default)
    check_url("https://registry.local/m.onnx", default)  # https: anywhere by default
    listed = FetchPolicy(http_hosts=["Registry.Local"], https_hosts=["cdn.example"])
    check_url("http://registry.local:8080/m.onnx", listed)
    with pytest.raises(FetchRefused, match="http_hosts"):
        check_url("http://evil.example/m.onnx", listed)
    with pytest.raises(FetchRefused, match="https_hosts"):
        check_url("https://evil.example/m.onnx", listed)
    with pytest.raises(FetchRefused, match="schemes"):
        check_url("https://cdn.example/m.onnx", FetchPolicy(schemes=["http"]))
    with pytest.raises(FetchRefused, match="schemes"):
        check_url("ftp://h/m.onnx", default)


def test_a_stream_longer_than_the_signed_size_is_aborted(endless: str, tmp_path: Path) -> None:
    dest = tmp_path / "models" / "m.onnx"
    with pytest.raises(DeployError, match="more than the 1000 bytes signed"):
        fetch_artifact(f"{endless}/endless", dest, ZERO, policy=edge_policy(tmp_path), size=1000)
    assert list(dest.parent.iterdir()) == []
    # Without a signed size, the policy's max_size caps it.
    with pytest.raises(DeployError, match="more than the 70000 bytes allowed"):
        fetch_artifact(
            f"{endless}/endless", dest, ZERO, policy=edge_policy(tmp_path, max_size=70000)
        )
    assert list(dest.parent.iterdir()) == []
    # An announced length over the cap is refused before reading.
    with pytest.raises(DeployError, match="1000000000 bytes announced"):
        fetch_artifact(f"{endless}/big", dest, ZERO, policy=edge_policy(tmp_path), size=1000)
    # A signed size over max_size is refused before connecting.
    with pytest.raises(FetchRefused, match="over the"):
        fetch_artifact(
            f"{endless}/endless", dest, ZERO, policy=edge_policy(tmp_path, max_size=10), size=11
        )
    assert list(dest.parent.iterdir()) == []


def test_a_redirect_to_a_host_not_allowed_is_refused(endless: str, tmp_path: Path) -> None:
    with pytest.raises(FetchRefused, match="http_hosts"):
        fetch_artifact(
            f"{endless}/redirect", tmp_path / "m.onnx", ZERO, policy=edge_policy(tmp_path)
        )
    assert list(tmp_path.iterdir()) == []


def test_a_size_that_differs_from_the_signed_one_is_not_installed(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "m.onnx").write_bytes(b"model")
    sha = hashlib.sha256(b"model").hexdigest()
    dest = tmp_path / "models" / "m.onnx"
    with pytest.raises(DeployError, match="5 bytes, the deployment says 6"):
        fetch_artifact((root / "m.onnx").as_uri(), dest, sha, policy=edge_policy(tmp_path), size=6)
    assert list(dest.parent.iterdir()) == []


def test_partial_files_of_a_killed_download_are_removed(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "m.onnx").write_bytes(b"model")
    dest = tmp_path / "models" / "m.onnx"
    dest.parent.mkdir()
    stale = dest.parent / ".m.onnx.abc123.part"
    stale.write_bytes(b"\0" * 1000)
    sha = hashlib.sha256(b"model").hexdigest()
    fetch_artifact((root / "m.onnx").as_uri(), dest, sha, policy=edge_policy(tmp_path), size=5)
    assert sorted(dest.parent.iterdir()) == [dest]


def test_a_fifo_under_the_root_is_refused_without_blocking(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    os.mkfifo(root / "m.onnx")  # no writer: opening it for reading would block forever
    outcome: list[BaseException] = []

    def fetch() -> None:
        try:
            fetch_artifact((root / "m.onnx").as_uri(), tmp_path / "m.onnx", ZERO,
                           policy=edge_policy(tmp_path))  # fmt: skip
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=fetch, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "fetching a FIFO blocked"
    assert isinstance(outcome[0], FetchRefused) and "not a regular file" in str(outcome[0])


def test_a_nul_byte_in_the_url_is_refused(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/artifacts/m.onnx%00.txt"
    with pytest.raises(FetchRefused, match="NUL"):
        fetch_artifact(url, tmp_path / "m.onnx", ZERO, policy=edge_policy(tmp_path))
    with pytest.raises(FetchRefused, match="NUL"):  # the registry's own copies too
        fetch_artifact(url, tmp_path / "m.onnx", ZERO)


def test_a_link_out_of_the_root_swapped_in_after_the_check_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "artifacts"
    (root / "v1").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "m.onnx").write_bytes(b"secret")
    (root / "v1" / "m.onnx").write_bytes(b"model")
    url = (root / "v1" / "m.onnx").as_uri()
    policy = edge_policy(tmp_path)
    check_url(url, policy)  # allowed when checked; then the folder becomes a link outside
    (root / "v1" / "m.onnx").unlink()
    (root / "v1").rmdir()
    (root / "v1").symlink_to(outside)
    monkeypatch.setattr(fetch_module, "check_url", lambda url, policy: None)  # checked before
    with pytest.raises(FetchRefused, match="refused"):
        fetch_artifact(url, tmp_path / "m.onnx", hashlib.sha256(b"secret").hexdigest(),
                       policy=policy)  # fmt: skip
    # and when the path was resolved before the swap, the link is not followed either
    monkeypatch.setattr(os.path, "realpath", lambda path, **kw: os.path.abspath(path))
    with pytest.raises(FetchRefused, match="symbolic link"):
        fetch_artifact(url, tmp_path / "m.onnx", hashlib.sha256(b"secret").hexdigest(),
                       policy=policy)  # fmt: skip
    assert not (tmp_path / "m.onnx").exists()
