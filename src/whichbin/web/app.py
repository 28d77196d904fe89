"""``create_app``: the FastAPI factory behind ``whichbin web`` (dashboard and REST API)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from whichbin.config import Settings, WebConfig
from whichbin.deploy.publish import Deployer, DeploymentRefused, MqttDeployer
from whichbin.errors import DeployError, WhichbinError
from whichbin.registry.base import Registry, TransitionRefused, VersionNotFound

logger = logging.getLogger(__name__)


def _status_for(error: WhichbinError) -> int:
    """The one place registry and deploy errors become HTTP statuses."""
    if isinstance(error, VersionNotFound):
        return 404
    if isinstance(error, TransitionRefused | DeploymentRefused):
        return 409
    if isinstance(error, DeployError):  # the broker: a bad gateway from the client's view
        return 502
    return 400


def create_app(
    settings: Settings | None = None,
    registry: Registry | None = None,
    deployer: Deployer | None = None,
) -> FastAPI:
    """Build the app.

    Args:
        settings: The config tree; the app reads its ``web``, ``pipeline.registry``,
            ``mqtt`` and ``deploy`` sections. None: the defaults with publishing off (a
            library default that talks to no broker and reads nothing from the environment).
        registry: The registry to serve; default ``open_registry`` of ``pipeline.registry``.
        deployer: Publishes deployments on approval; default an ``MqttDeployer`` for the
            ``mqtt`` section when ``web.publish`` is on, else approvals are recorded without
            publishing.
    """
    from whichbin.web.routes import artifacts, dashboard, health, models

    settings = settings or Settings(web=WebConfig(publish=False))
    if registry is None:
        from whichbin.registry import open_registry

        reg = settings.pipeline.registry
        registry = open_registry(reg.uri, default_name=reg.model_name)
    if deployer is None and settings.web.publish:
        deployer = MqttDeployer(settings.mqtt, settings.deploy.timeout)

    app = FastAPI(
        title="whichbin",
        summary="Model registry, approval and deployment for whichbin cameras",
        version="1",
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.deployer = deployer

    @app.exception_handler(WhichbinError)
    async def _whichbin_error(request: Request, exc: WhichbinError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=_status_for(exc))

    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(artifacts.router)
    app.include_router(dashboard.router)
    return app
