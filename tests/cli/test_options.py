"""Every command group reads config alike: --config / $WHICHBIN_CONFIG, environment, flags."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tests.conftest import free_port, wait_for
from tests.registry.fixtures import prefix, register, registry  # noqa: F401
from whichbin.cli.main import app
from whichbin.cli.options import load_config
from whichbin.registry.local import SqliteRegistry

runner = CliRunner()


@pytest.fixture()
def tls_config(
    registry: SqliteRegistry,  # noqa: F811
    color_bundle: Path,
    tmp_path: Path,
) -> tuple[Path, Path]:
    """A registry with one version, and a config file naming it and a TLS broker whose CA
    bundle does not exist: (config, CA bundle)."""
    register(registry, color_bundle)
    ca = tmp_path / "missing-ca.pem"
    path = tmp_path / "whichbin.yaml"
    path.write_text(
        f"mqtt: {{url: 'mqtts://127.0.0.1:{free_port()}', ca_file: '{ca}'}}\n"
        f"pipeline: {{registry: {{uri: '{registry.root}'}}}}\n"
    )
    return path, ca


def test_registry_approve_uses_the_config_files_ca_bundle(
    registry: SqliteRegistry,  # noqa: F811
    tls_config: tuple[Path, Path],
) -> None:
    cfg, ca = tls_config
    # $WHICHBIN_CONFIG, like --config: the registry and the CA bundle both come from it.
    r = runner.invoke(
        app, ["registry", "approve", "1", "--timeout", "0.5"], env={"WHICHBIN_CONFIG": str(cfg)}
    )
    assert r.exit_code == 1
    assert str(ca) in r.stderr  # the CA bundle it was told to use, not the system's
    assert registry.get("1").status == "Approved"  # recorded, not published


def test_web_uses_the_config_files_ca_bundle(
    registry: SqliteRegistry,  # noqa: F811
    tls_config: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    from tests.web.conftest import PASSWORD, basic
    from whichbin.security.users import UserStore

    cfg, ca = tls_config
    UserStore.for_registry(registry.root).add("ana", "approver", PASSWORD)
    port = free_port()
    log = tmp_path / "web.log"
    proc = subprocess.Popen(
        [
            sys.executable, "-c", "from whichbin.cli.main import app; app()",
            "web", "--config", str(cfg), "--port", str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                return True
        except OSError:
            return False

    try:
        assert wait_for(up, timeout=20), log.read_text()
        request = urllib.request.Request(
            f"{base}/api/models/trash-classifier/1/approve",
            data=json.dumps({"by": "ana"}).encode(),
            headers={"Content-Type": "application/json", **basic("ana")},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=10)
        assert err.value.code == 502
        assert str(ca) in json.loads(err.value.read())["detail"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "whichbin.yaml"
    path.write_text("mqtt: {url: 'mqtt://file:1883', prefix: file}\npi: {hold: 5}\n")
    monkeypatch.setenv("WHICHBIN_MQTT__PREFIX", "env")
    monkeypatch.setenv("WHICHBIN_PI__HOLD", "6")
    s = load_config(path, {"pi.hold": 7.0, "mqtt.url": None})
    assert (s.mqtt.url, s.mqtt.prefix, s.pi.hold) == ("mqtt://file:1883", "env", 7.0)


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every group and command under a Click ``command`` (typer's vendored Click), with its
    path of names."""
    found = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += _commands(sub, (*path, name))
    return found


COMMANDS = [path for path, _ in _commands(typer.main.get_command(app)) if path]


def test_the_tree_is_walked() -> None:
    walked = {" ".join(p) for p in COMMANDS}
    assert {"classify", "web", "registry approve", "edge run", "pi display"} <= walked
    assert len(walked) >= 20


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_help_has_an_example(path: tuple[str, ...]) -> None:
    res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "Example" in res.output and "whichbin " + " ".join(path) in res.output


@pytest.mark.parametrize(
    "path",
    [p for p in COMMANDS if p[0] in ("pipeline", "registry", "edge", "pi", "web", "data", "keys")],
)
def test_config_groups_take_the_shared_config_option(path: tuple[str, ...]) -> None:
    command = dict(_commands(typer.main.get_command(app)))[path]
    if hasattr(command, "commands") or path in (("data", "import"), ("data", "stats")):
        return  # groups, and data commands that read no settings
    options = {o for p in command.params for o in p.opts}
    assert "--config" in options, path


def test_bad_yaml_in_the_environment_is_one_line_naming_the_variable() -> None:
    result = runner.invoke(
        app, ["edge", "show-config"], env={"WHICHBIN_EDGE__DEVICE_ID": "a: b: c"}
    )
    assert result.exit_code == 1
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in result.output
    assert "WHICHBIN_EDGE__DEVICE_ID: invalid YAML value" in message


def test_help_shows_the_defaults() -> None:
    res = runner.invoke(app, ["edge", "run", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "default:" in res.output and "[default: 5]" in res.output  # --vote-frames


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_no_default_in_help_is_eaten_as_markup(path: tuple[str, ...]) -> None:
    command = dict(_commands(typer.main.get_command(app)))[path]
    written = sum((getattr(p, "help", None) or "").count("[default:") for p in command.params)
    res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
    assert res.output.count("[default:") >= written, path


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_examples_are_whole_lines(path: tuple[str, ...]) -> None:
    """A ``\\`` continuation in a docstring joins two lines with a run of spaces."""
    command = dict(_commands(typer.main.get_command(app)))[path]
    for line in (command.help or "").splitlines():
        assert "   " not in line.strip(), line
