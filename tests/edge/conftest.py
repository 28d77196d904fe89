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

if TYPE_CHECKING:
    from whichbin.edge.service import EdgeService


class StartEdge(Protocol):
    """The function ``start_edge`` gives (for annotations)."""

    def __call__(self, source: Any, *, start: bool = True, **options: Any) -> EdgeService: ...


EdgeProcess = Callable[..., subprocess.Popen]  # what ``edge_process`` gives


@pytest.fixture()
def start_edge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StartEdge]:
    """``start_edge(source, *, start=True, **options) -> EdgeService``, as ``edge run``
    builds it; every edge it made is stopped after the test.

    Args of the function it gives:
        source: a frame folder or video (a path), or a ready FrameSource (a scripted camera).
        start: run it on its thread now; False gives it unstarted (``run()`` blocks
            until the source ends).
        options: the edge's options; by default a fresh ``cam-<hex>`` device id, the
            session broker (started only when no ``mqtt_url`` is given) and
            ``<tmp>/models`` for deployments.
    """
    from whichbin.edge.service import EdgeOptions, EdgeService

    made: list[EdgeService] = []

    def make(source: Any, *, start: bool = True, **options: Any) -> EdgeService:
        if "mqtt_url" not in options:
            options["mqtt_url"] = request.getfixturevalue("broker").url
        options.setdefault("device_id", f"cam-{uuid.uuid4().hex[:8]}")
        options.setdefault("models_dir", tmp_path / "models")
        given = None if isinstance(source, str | Path) else source
        svc = EdgeService(
            EdgeOptions(source="scripted" if given is not None else str(source), **options),
            source=given,
        )
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
