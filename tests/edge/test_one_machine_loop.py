"""The README's one-machine loop: a local registry publishes a signed file:// deployment and
``whichbin edge run --trusted-key ... --file-root REGISTRY`` follows it; without
``--file-root`` the same deployment is refused (the default fetch policy refuses file://)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.edge.conftest import EdgeProcess, new_device
from tests.helpers import Broker, Recorder, SigningKey, make_color_bundle, solid_image


def _approve(registry: Path, bundle: Path, broker: Broker) -> str:
    from whichbin.registry import open_registry

    version = open_registry(str(registry)).register(
        "loop-model", bundle, {"bin_accuracy": 1.0}, True, [], {"manifest": "x"}
    )
    cmd = [sys.executable, "-c", "from whichbin.cli.main import app; app()", "registry"]
    done = subprocess.run(
        [*cmd, "approve", version.id, "--by", "alice", "--registry", str(registry),
         "--mqtt", broker.url],
        capture_output=True, text=True, env=os.environ, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return version.id


@pytest.mark.parametrize("file_root", [True, False])
def test_edge_follows_a_signed_file_deployment_only_under_its_file_root(
    fresh_broker: Broker,
    tmp_path: Path,
    edge_process: EdgeProcess,
    signing_key: SigningKey,
    file_root: bool,
) -> None:
    registry = tmp_path / "whichbin-registry"
    bundle = make_color_bundle(tmp_path / "m.onnx", version="loop-model/1")
    frames = tmp_path / "frames"
    frames.mkdir()
    solid_image(frames / "0001.jpg", (40, 40, 40))
    dev, topics = new_device()
    rec = Recorder(fresh_broker.url, [topics.deployment_status])
    args = [
        "--source", str(frames), "--fps", "5", "--mqtt", fresh_broker.url, "--device-id", dev,
        "--models-dir", str(tmp_path / "models"), "--data-dir", str(tmp_path / "edge"),
        "--trusted-key", str(signing_key.public),
    ]  # fmt: skip
    proc = edge_process(*args, *(["--file-root", str(registry)] if file_root else []))
    try:
        version = _approve(registry, bundle, fresh_broker)
        want = "active" if file_root else "failed"
        assert wait_for(
            lambda: any(
                s["version"] == version and s["state"] == want
                for s in rec.payloads(topics.deployment_status)
                if isinstance(s, dict)
            ),
            30,
        ), (rec.payloads(topics.deployment_status), proc.poll())
        if not file_root:
            failed = [s for s in rec.payloads(topics.deployment_status) if s["state"] == "failed"]
            assert "file" in failed[-1]["error"]
            assert not any(s["state"] == "active" for s in rec.payloads(topics.deployment_status))
    finally:
        rec.close()
