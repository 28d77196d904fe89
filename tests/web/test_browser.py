"""The dashboard as a real headless Chromium sees it, served by a real uvicorn."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.registry.fixtures import register
from tests.web.server import serve
from whichbin.registry.local import SqliteRegistry
from whichbin.web import create_app

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
)
def test_dashboard_in_headless_chromium(
    registry: SqliteRegistry, color_bundle: Path, tmp_path: Path
) -> None:
    register(registry, color_bundle)
    register(registry, color_bundle, passed=False)
    registry.approve("1", by="ana")
    with serve(create_app(registry=registry)) as base:
        dom = subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'chromium'}",
                "--dump-dom",
                f"{base}/",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    assert '<table id="versions">' in dom
    assert 'data-version="trash-classifier/1"' in dom and "trash-classifier/2" in dom
    assert "Approved (current)" in dom
