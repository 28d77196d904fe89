"""The edge: config section: strict model, YAML + environment + flags, errors naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from whichbin.cli.main import app
from whichbin.cli.options import load_config
from whichbin.config import EdgeConfig
from whichbin.errors import ConfigError

CONFIG = """
mqtt:
  url: mqtt://broker.local:1884
  prefix: home
edge:
  device_id: kitchen
  source: "0"
  data_dir: /var/lib/whichbin/edge
  presence: {roi: [0.2, 0.1, 0.8, 0.9], enter_frames: 3}
  decision: {vote_frames: 7, agree_frames: 4, timeout: 6}
  snapshots: {max_count: 100, publish: true}
  homeassistant: {enabled: true}
  http: {port: 8081}
"""


def show(args: list[str], env: dict[str, str] | None = None) -> dict:
    result = CliRunner().invoke(app, ["edge", "show-config", "--json", *args], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_field_has_a_default_and_a_description() -> None:
    cfg = EdgeConfig()
    assert cfg.device_id is None and cfg.decision.vote_frames == 5
    stack = [EdgeConfig]
    while stack:
        model = stack.pop()
        for name, f in model.model_fields.items():
            assert f.description or isinstance(f.default_factory, type), f"{model.__name__}.{name}"
            if isinstance(f.default_factory, type):
                stack.append(f.default_factory)


def test_yaml_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "whichbin.yaml"
    path.write_text(CONFIG)
    doc = show(["--config", str(path)])
    edge = doc["edge"]
    assert edge["device_id"] == "kitchen" and edge["presence"]["roi"] == [0.2, 0.1, 0.8, 0.9]
    assert edge["decision"] == {
        "vote_frames": 7, "agree_frames": 4, "timeout": 6.0, "threshold": None, "top_k": 3
    }  # fmt: skip
    assert doc["mqtt"]["url"] == "mqtt://broker.local:1884"
    env = {"WHICHBIN_EDGE__DECISION__TIMEOUT": "9", "WHICHBIN_EDGE__DEVICE_ID": "hall"}
    assert show(["--config", str(path)], env)["edge"]["decision"]["timeout"] == 9.0
    # Flags win over both (the sections `edge run` hands to EdgeService).
    flags = {"edge.device_id": "porch", "edge.decision.vote_frames": 9}
    flags["edge.fps"] = None  # not given: the file's value stays
    settings = load_config(path, flags)
    options, mqtt = settings.edge.require(), settings.mqtt
    assert options.device_id == "porch" and options.decision.vote_frames == 9
    assert mqtt.url == "mqtt://broker.local:1884" and mqtt.prefix == "home"
    assert options.presence.roi == (0.2, 0.1, 0.8, 0.9) and options.presence.enter_frames == 3
    assert options.snapshots.publish and options.homeassistant.enabled
    assert options.http.port == 8081 and options.data_dir == Path("/var/lib/whichbin/edge")


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("edge: {decision: {vote_frames: 3, agree_frames: 4}}", "edge.decision"),
        ("edge: {presence: {roi: [0.5, 0, 0.4, 1]}}", "edge.presence.roi"),
        ("edge: {snapshots: {max_count: -1}}", "edge.snapshots.max_count"),
        ("edge: {camera: 0}", "edge.camera"),
        ("edge: {model: m.onnx, default_model: true}", "edge"),
        ("egde: {device_id: kitchen}", "egde: unknown key"),  # a typo: not pipeline.egde
        ("training: {epochs: 3}\negde: {device_id: kitchen}", "egde: unknown key"),
        ("mqtt: {prefix: x}\negde: {device_id: kitchen}", "egde: Extra inputs"),
        ("training: {epochs: 0}", "pipeline.training.epochs"),  # a pipeline-only file
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path: Path, yaml_text: str, key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    result = CliRunner().invoke(app, ["edge", "show-config", "--config", str(path)])
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert message.startswith(f"Error: {path}: {key}") and len(message.splitlines()) == 1


def test_run_requires_device_and_source() -> None:
    with pytest.raises(ConfigError, match=r"edge\.source: required \(set --source"):
        EdgeConfig(device_id="x").require()
    result = CliRunner().invoke(app, ["edge", "run", "--source", "0"])
    assert result.exit_code == 1
    assert "--device-id" in (result.stderr or "") + str(result.exception or "")


def test_config_imports_no_runtime() -> None:
    """The config tree loads without the edge, web, MQTT or torch code (a fresh process)."""
    import subprocess
    import sys

    code = (
        "import sys, whichbin.config as c; c.Settings(); "
        "print(sorted(m for m in sys.modules if m.startswith('whichbin')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(out.stdout))  # noqa: S307 - our own output: a list of module names
    assert loaded <= {"whichbin", "whichbin.errors"} | {
        m for m in loaded if m.startswith("whichbin.config")
    }, loaded
    assert EdgeConfig.model_validate({"device_id": "b"}).device_id == "b"


def test_show_config_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["edge", "show-config", "--help"])
    assert result.exit_code == 0 and "whichbin edge show-config --config" in result.output


def test_presence_and_stills_settings_reach_the_detector(tmp_path: Path) -> None:
    from whichbin.edge.presence import PresenceDetector

    # The detector takes the config section itself: its defaults are the section's.
    assert PresenceDetector().config == EdgeConfig().presence
    path = tmp_path / "whichbin.yaml"
    path.write_text(
        "edge:\n  device_id: k\n  source: ./photos\n  stills: true\n"
        "  presence: {crop: false, crop_margin: 0.2, extra_crop_margins: [0.0, 0.3]}\n"
    )
    options = load_config(path).edge
    assert options.stills
    assert options.presence.crop is False and options.presence.crop_margin == 0.2
    assert options.presence.extra_crop_margins == (0.0, 0.3)
    path.write_text("edge: {presence: {extra_crop_margins: [3]}}\n")
    with pytest.raises(ConfigError, match="edge.presence.extra_crop_margins"):
        load_config(path)


def test_number_like_environment_values_fill_text_fields() -> None:
    doc = show([], env={"WHICHBIN_EDGE__SOURCE": "0", "WHICHBIN_EDGE__DEVICE_ID": "42"})
    assert doc["edge"]["source"] == "0" and doc["edge"]["device_id"] == "42"
    doc = show([], env={"WHICHBIN_EDGE__DECISION__TIMEOUT": "9"})
    assert doc["edge"]["decision"]["timeout"] == 9.0  # numeric fields stay numbers


@pytest.mark.parametrize("device", ["#", "+", "a/b", "fleet"])
def test_a_wildcard_device_id_is_refused_by_every_entry_point(device: str) -> None:
    result = CliRunner().invoke(
        app, ["edge", "uninstall-ha", "--device-id", device, "--mqtt", "mqtt://127.0.0.1:1"]
    )
    assert result.exit_code == 1, result.output
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and "edge.device_id" in message
    with pytest.raises(ConfigError, match="edge.device_id"):
        load_config(None, {"edge.device_id": device})
    if device != "#":  # in YAML (so in the environment) a bare # starts a comment: null
        result = CliRunner().invoke(
            app, ["edge", "show-config"], env={"WHICHBIN_EDGE__DEVICE_ID": device}
        )
        assert result.exit_code == 1 and "edge.device_id" in result.output
