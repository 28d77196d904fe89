"""``GET /``: the dashboard."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from whichbin.web.dashboard import render_dashboard
from whichbin.web.deps import DeployerDep, RegistryDep

router = APIRouter(tags=["dashboard"])


@router.get("/", response_class=HTMLResponse)
def dashboard(registry: RegistryDep, deployer: DeployerDep) -> str:
    """A table of every version: metrics, gate, approval, report and artifact links."""
    versions = registry.list()
    current = set()
    for name in sorted({v.name for v in versions}):
        approved = registry.latest_approved(name)
        if approved is not None:
            current.add(approved.id)
    return render_dashboard(versions, current, registry.uri, deployer is not None)
