"""``create_app``: the FastAPI factory behind ``whichbin web`` (dashboard and REST API)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from whichbin.config import Settings, WebConfig
from whichbin.deploy.publish import Deployer, DeploymentRefused, MqttDeployer
from whichbin.errors import DeployError, WhichbinError
from whichbin.registry.base import Registry, TransitionRefused, VersionNotFound
from whichbin.web.auth import Auth
from whichbin.web.guards import BodyLimit, HostGuard, allowed_hosts

if TYPE_CHECKING:
    from whichbin.security.users import UserStore

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
    users: UserStore | None = None,
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
        users: Who may log in; default ``web.users_file``, else ``users.sqlite`` in the
            local registry directory (none for a remote registry: writes are refused).
    """
    from whichbin.web.routes import artifacts, dashboard, health, models, session

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
    app.state.auth = Auth(
        users if users is not None else open_users(settings, registry), settings.web
    )

    @app.exception_handler(WhichbinError)
    async def _whichbin_error(request: Request, exc: WhichbinError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=_status_for(exc))

    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(artifacts.router)
    app.include_router(dashboard.router)
    app.include_router(session.router)
    # Outermost first: a foreign Host is refused before its body is even read.
    app.add_middleware(BodyLimit, limit=settings.web.max_body_bytes)
    hosts = allowed_hosts(
        settings.web.allowed_hosts, settings.web.host, settings.deploy.artifact_base_url
    )
    app.add_middleware(HostGuard, hosts=hosts)
    return app


def open_users(settings: Settings, registry: Registry) -> UserStore | None:
    """``web.users_file``, else the local registry's users; None for a remote registry."""
    from whichbin.security.users import UserError, UserStore

    if settings.web.users_file is not None:
        return UserStore(settings.web.users_file)
    try:
        return UserStore.for_registry(registry.uri)
    except UserError:
        logger.warning(
            "registry %s is not a local directory and web.users_file is unset: "
            "nobody can log in, so every write is refused",
            registry.uri,
        )
        return None
