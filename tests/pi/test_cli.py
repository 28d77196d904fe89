"""``whichbin pi display``: help, usage errors, and the real command on a terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import wait_for
from tests.helpers import Broker
from tests.pi.support import connect, make_event
from whichbin.cli.main import app
from whichbin.contract import Topics
from whichbin.pi.render import icon_pixels, to_text

runner = CliRunner()


def test_help_has_an_example() -> None:
    for args in (["pi", "--help"], ["pi", "display", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0
        assert "Example: whichbin pi display --mqtt" in result.output
    result = runner.invoke(app, ["pi", "display", "--help"])
    for option in (
        "--output",
        "--hold",
        "--rotation",
        "--brightness",
        "--prefix",
        "--deeplens-topic",
        "--data-dir",
    ):
        assert option in result.output


def test_unwritable_data_dir_is_one_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    bad = tmp_path / "file" / "pi"
    result = runner.invoke(
        app,
        ["pi", "display", "--mqtt", "mqtt://127.0.0.1:1", "--device-id", "x",
         "--output", "terminal", "--data-dir", str(bad)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"{bad / 'outbox.sqlite'}: cannot open the corrections outbox" in result.output


def test_usage_errors_exit_2() -> None:
    base = ["pi", "display", "--mqtt", "mqtt://127.0.0.1:1", "--device-id", "x"]
    assert runner.invoke(app, [*base, "--rotation", "45"]).exit_code == 2
    assert runner.invoke(app, [*base, "--output", "hdmi"]).exit_code == 2
    assert runner.invoke(app, [*base, "--brightness", "2"]).exit_code == 2
    assert runner.invoke(app, ["pi", "display", "--device-id", "x"]).exit_code == 2


def test_terminal_output_end_to_end(broker: Broker, tmp_path: Path) -> None:
    device = f"bin-{uuid.uuid4().hex[:8]}"
    err = tmp_path / "stderr.txt"
    with err.open("wb") as f:
        proc = subprocess.Popen(
            [
                sys.executable, "-c", "from whichbin.cli.main import app; app()", "pi", "display",
                "--mqtt", broker.url, "--device-id", device,
                "--output", "terminal", "--hold", "30", "--data-dir", str(tmp_path / "pi"),
            ],
            stdout=subprocess.PIPE,
            stderr=f,
            env={**os.environ, "TERM": "dumb", "NO_COLOR": "1"},
        )  # fmt: skip
    try:
        question = to_text(icon_pixels("idle"))
        assert wait_for(lambda: question in err.read_text(), 20), err.read_text()
        pub = connect(broker.url)
        try:
            pub.publish_confirmed(Topics(device).event, make_event(device, "recycling").to_json())
        finally:
            pub.stop()
        assert wait_for(lambda: to_text(icon_pixels("recycling")) in err.read_text(), 10)
    finally:
        proc.send_signal(signal.SIGTERM)  # how systemd stops it
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, err.read_text()
    assert out == b""  # the display prints nothing on stdout
    text = err.read_text()
    assert text.index(to_text(icon_pixels("disconnected"))) < text.index(question)


def test_a_wildcard_device_id_is_refused_in_one_line() -> None:
    for device in ("#", "+", "a/b", "fleet"):
        result = runner.invoke(
            app, ["pi", "display", "--device-id", device, "--mqtt", "mqtt://127.0.0.1:1"]
        )
        assert result.exit_code == 1, result.output
        message = result.output.strip()
        assert len(message.splitlines()) == 1 and "pi.device_id" in message


def test_the_documented_display_environment_configures_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/operations.md's whichbin.env, as whichbin-pi.service passes it, reaches the
    broker over mqtts:// with the CA bundle and the display's client certificate."""
    from whichbin.cli.options import load_config

    docs = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    block = docs.split("/etc/whichbin/whichbin.env", 1)[1].split("```sh\n", 1)[1]
    env = dict(line.split("=", 1) for line in block.split("```", 1)[0].splitlines() if "=" in line)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    unit = (Path(__file__).resolve().parents[2] / "deploy/systemd/whichbin-pi.service").read_text()
    assert "--mqtt ${WHICHBIN_MQTT_URL} --device-id ${WHICHBIN_DEVICE_ID}" in unit
    mqtt = load_config(
        None, {"mqtt.url": env["WHICHBIN_MQTT_URL"], "pi.device_id": env["WHICHBIN_DEVICE_ID"]}
    ).mqtt
    assert mqtt.url.startswith("mqtts://")
    assert mqtt.ca_file and mqtt.cert_file and mqtt.key_file
