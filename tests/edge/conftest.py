"""The edge tests' ways to start an edge: in-process (``start_edge``) or as the
``whichbin edge run`` process systemd would run (``edge_process``)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from whichbin.contract import Topics

if TYPE_CHECKING:
    from tests.helpers import Recorder
    from whichbin.config import MqttConfig
    from whichbin.edge.service import EdgeService


class StartEdge(Protocol):
    """The function ``start_edge`` gives (for annotations)."""

    def __call__(
        self,
        source: Any,
        *,
        start: bool = True,
        mqtt: MqttConfig | None = None,
        classify_all: bool = False,
        **edge: Any,
    ) -> EdgeService: ...


EdgeProcess = Callable[..., subprocess.Popen]  # what ``edge_process`` gives


def new_device() -> tuple[str, Topics]:
    """A device id no other test uses (the brokers are shared), and its topics."""
    dev = f"cam-{uuid.uuid4().hex[:8]}"
    return dev, Topics(dev)


def edge_process_on_compost(
    edge_process: EdgeProcess, broker_url: str, model: Path, tmp_path: Path, fps: int, **popen: Any
) -> tuple[Topics, Recorder, subprocess.Popen]:
    """A ``whichbin edge run`` process replaying a compost scene at ``fps`` on a fresh
    device, and a Recorder of its availability and events (subscribed before it starts)."""
    from tests.edge.scenes import write_scene
    from tests.helpers import Recorder

    dev, topics = new_device()
    frames = write_scene(tmp_path / "frames", ["compost"])
    rec = Recorder(broker_url, [topics.availability, topics.event])
    proc = edge_process(
        "--model", str(model), "--source", str(frames), "--fps", str(fps),
        "--mqtt", broker_url, "--device-id", dev, "--data-dir", str(tmp_path / "edge"),
        **popen,
    )  # fmt: skip
    return topics, rec, proc


@pytest.fixture()
def start_edge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StartEdge]:
    """``start_edge(source, *, start=True, mqtt=None, classify_all=False, **edge) ->
    EdgeService``, as ``edge run`` builds it; every edge it made is stopped after the test.

    Args of the function it gives:
        source: a frame folder or video (a path), or a ready FrameSource (a scripted camera).
        start: run it on its thread now; False gives it unstarted (``run()`` blocks
            until the source ends).
        mqtt: the ``mqtt`` section; default: the session broker (started only when no
            ``mqtt`` is given).
        classify_all: classify every frame (benchmarks).
        edge: fields of the ``edge`` section (EdgeConfig); by default a fresh ``cam-<hex>``
            device id, ``<tmp>/models`` for deployments and ``data_dir=None`` (nothing on
            disk).
    """
    from whichbin.config import EdgeConfig, MqttConfig
    from whichbin.edge.service import EdgeService

    made: list[EdgeService] = []

    def make(
        source: Any,
        *,
        start: bool = True,
        mqtt: MqttConfig | None = None,
        classify_all: bool = False,
        **edge: Any,
    ) -> EdgeService:
        if mqtt is None:
            mqtt = MqttConfig(url=request.getfixturevalue("broker").url)
        edge.setdefault("device_id", f"cam-{uuid.uuid4().hex[:8]}")
        edge.setdefault("models_dir", tmp_path / "models")
        edge.setdefault("data_dir", None)
        given = None if isinstance(source, str | Path) else source
        config = EdgeConfig(source="scripted" if given is not None else str(source), **edge)
        svc = EdgeService(config, mqtt, source=given, classify_all=classify_all)
        made.append(svc)
        return svc.start() if start else svc

    yield make
    for svc in reversed(made):
        svc.stop()


@pytest.fixture()
def edge_process() -> Iterator[EdgeProcess]:
    """``edge_process(*args, stdout=DEVNULL) -> Popen``: ``whichbin edge run ARGS`` as a
    process (stderr piped); killed after the test if it still runs."""
    procs: list[subprocess.Popen] = []

    def launch(*args: str, stdout: Any = subprocess.DEVNULL) -> subprocess.Popen:
        cmd = [sys.executable, "-c", "from whichbin.cli.main import app; app()", "edge", "run"]
        proc = subprocess.Popen(
            [*cmd, *args], stdout=stdout, stderr=subprocess.PIPE, env=os.environ
        )
        procs.append(proc)
        return proc

    yield launch
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
