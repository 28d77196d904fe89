"""``GET /``: the dashboard."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from whichbin.registry.view import live_ids
from whichbin.security.users import allowed
from whichbin.web.auth import CallerDep
from whichbin.web.dashboard import Visitor, render_dashboard
from whichbin.web.deps import DeployerDep, RegistryDep

router = APIRouter(tags=["dashboard"])
# The dashboard's buttons act as the logged-in user: never inside another site's frame.
NO_FRAMING = {"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"}


@router.get("/", response_class=HTMLResponse)
def dashboard(registry: RegistryDep, deployer: DeployerDep, who: CallerDep) -> HTMLResponse:
    """A table of every version: metrics, gate, approval, report and artifact links; a
    login form, and approve/reject buttons for approvers."""
    versions = registry.list()
    current = live_ids(registry, (v.name for v in versions))
    visitor = None
    if who is not None:
        user = who.user
        visitor = Visitor(user.name, user.role, allowed(user.role, "approve"), who.csrf)
    html = render_dashboard(versions, current, registry.uri, deployer is not None, visitor)
    return HTMLResponse(html, headers=NO_FRAMING)
