"""The command table: payloads are optional JSON, validated per command."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.helpers import make_color_bundle
from whichbin.contract import Topics
from whichbin.edge.commands import CommandTable, FileModelReloader, edge_commands
from whichbin.edge.runner import ActiveModel, StaticModel


class Runner:
    """Records what the commands asked of the frame loop."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    def relearn(self) -> None:
        self.calls.append("relearn")


def table(runner: Runner) -> CommandTable:
    reload = lambda: runner.calls.append("model")  # noqa: E731
    return CommandTable(Topics("cam1"), edge_commands(runner, reload))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("command", "payload", "calls"),
    [
        ("pause", b"", ["pause"]),
        ("pause", b"{}", ["pause"]),  # Home Assistant's button
        ("resume", b'{"anything": 1}', ["resume"]),
        ("reload", b"", ["model"]),
        ("reload", b"not json", ["model"]),  # not JSON: the defaults
        ("reload", b"[1, 2]", ["model"]),  # not an object: the defaults
        ("reload", b'{"background": true}', ["relearn", "model"]),
        ("reload", b'{"background": true, "model": false}', ["relearn"]),
        ("reload", b'{"model": false}', []),
    ],
)
def test_payloads_are_optional_json(command: str, payload: bytes, calls: list[str]) -> None:
    runner = Runner()
    assert table(runner).handle(command, f"whichbin/cam1/set/{command}", payload)
    assert runner.calls == calls


def test_a_value_that_does_not_fit_is_logged_with_its_field_and_not_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = Runner()
    with caplog.at_level(logging.ERROR):
        ran = table(runner).handle("reload", "whichbin/cam1/set/reload", b'{"background": [1]}')
    assert not ran and runner.calls == []
    assert "background" in caplog.text and "set/reload" in caplog.text


def test_the_table_subscribes_every_command() -> None:
    subscribed: list[str] = []

    class Client:
        def subscribe(self, topic: str, handler: object) -> None:
            subscribed.append(topic)

    table(Runner()).attach(Client())
    assert subscribed == [f"whichbin/cam1/set/{c}" for c in ("pause", "resume", "reload")]


def test_reload_of_a_fixed_model_swaps_only_a_changed_file_that_loads(tmp_path: Path) -> None:
    from whichbin.inference import OnnxClassifier

    def load(path: Path) -> ActiveModel:
        return ActiveModel.from_classifier(OnnxClassifier(path))

    path = make_color_bundle(tmp_path / "model.onnx", version="test/1")
    models = StaticModel(load(path))
    reloader = FileModelReloader(models, path, load)
    first = models.model
    reloader.reload()
    assert models.model is first  # unchanged
    make_color_bundle(path, version="test/2")
    reloader.reload()
    assert models.model.version == "test/2"
    path.write_bytes(b"broken")
    reloader.reload()
    assert models.model.version == "test/2"  # kept
