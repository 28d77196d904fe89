"""The dashboard as a real headless Chromium sees it, served by a real uvicorn: read
anonymously, and an approver logging in and approving."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.registry.fixtures import register
from tests.web.cdp import Chromium
from tests.web.conftest import PASSWORD
from tests.web.server import serve
from whichbin.registry.local import SqliteRegistry
from whichbin.security.users import UserStore
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


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
)
def test_approver_logs_in_and_approves_in_chromium(
    registry: SqliteRegistry, color_bundle: Path, users: UserStore, tmp_path: Path
) -> None:
    register(registry, color_bundle)
    row = "document.querySelector('tr[data-version=\"trash-classifier/1\"]')"
    with serve(create_app(registry=registry)) as base:
        browser = Chromium(CHROMIUM, tmp_path / "chromium")
        try:
            browser.call("Page.navigate", url=f"{base}/")
            assert browser.wait_for("document.querySelector('form.login')")
            assert browser.evaluate(f"{row}.querySelector('form.approve')") is None  # anonymous
            browser.evaluate(
                "const f = document.querySelector('form.login');"
                "f.username.value = 'ana';"
                f"f.password.value = {json.dumps(PASSWORD)};"
                "f.querySelector('button').click()"
            )
            assert browser.wait_for("document.body.innerText.includes('Logged in as ana')")
            assert browser.evaluate("document.cookie") == ""  # HttpOnly: no script reads it
            browser.evaluate(
                f"const f = {row}.querySelector('form.approve');"
                "f.note.value = 'looks good'; f.querySelector('button').click()"
            )
            assert browser.wait_for(f"{row}.innerText.includes('Approved (current)')"), (
                browser.evaluate("document.getElementById('message').textContent")
            )
        finally:
            browser.close()
    v = registry.get("1")
    assert v.approved_by == "ana" and registry.history("1")[-1].note == "looks good"
