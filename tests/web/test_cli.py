"""``whichbin web`` as a real process: it serves the registry it is pointed at."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import free_port, wait_for
from tests.registry.fixtures import register
from whichbin.registry.local import SqliteRegistry


def test_whichbin_web_serves_the_registry(
    registry: SqliteRegistry, color_bundle: Path, tmp_path: Path
) -> None:
    register(registry, color_bundle)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-c", "from whichbin.cli.main import app; app()",
            "web", "--port", str(port), "--registry", str(registry.root), "--no-deploy",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "web.log").open("wb"),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def health() -> dict | None:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as r:
                return json.loads(r.read())
        except OSError:
            return None

    try:
        assert wait_for(health, timeout=20), (tmp_path / "web.log").read_text()
        assert health() == {
            "status": "ok",
            "registry": str(registry.root),
            "versions": 1,
            "deploy_on_approval": False,
        }
        with urllib.request.urlopen(f"{base}/api/models/trash-classifier/1", timeout=2) as r:
            assert json.loads(r.read())["sha256"] == registry.get("1").sha256
    finally:
        proc.terminate()
        proc.wait(10)


def test_web_refuses_a_network_address_without_users(registry: SqliteRegistry) -> None:
    from typer.testing import CliRunner

    from whichbin.cli.main import app

    runner = CliRunner()
    args = ["web", "--host", "0.0.0.0", "--registry", str(registry.root), "--no-deploy"]
    r = runner.invoke(app, args)
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no users" in lines[0] and "whichbin users add" in lines[0]
    help_text = runner.invoke(app, ["web", "--help"]).output
    assert "Example: whichbin web" in help_text and "0.0.0.0" not in help_text
