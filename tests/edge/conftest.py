"""The edge tests' one way to start an edge: the ``start_edge`` fixture."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from whichbin.edge.service import EdgeService


class StartEdge(Protocol):
    """The function ``start_edge`` gives (for annotations)."""

    def __call__(self, source: Any, *, start: bool = True, **options: Any) -> EdgeService: ...


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
