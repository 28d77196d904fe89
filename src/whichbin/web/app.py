"""``create_app``: the FastAPI factory behind ``whichbin web`` (dashboard and REST API)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from whichbin.config import MqttConfig, RegistryConfig
from whichbin.deploy.publish import Deployer, DeploymentRefused, MqttDeployer
from whichbin.errors import DeployError, WhichbinError
from whichbin.registry.base import Registry, TransitionRefused, VersionNotFound

logger = logging.getLogger(__name__)


class WebSettings(BaseModel):
    """What the web server needs: where the registry is and where approvals are published."""

    model_config = ConfigDict(extra="forbid")
    registry_uri: str = Field(default=RegistryConfig().uri, description="Registry directory or URI")
    model_name: str = Field(default=RegistryConfig().model_name, description="Default model name")
    mqtt_url: str | None = Field(
        default=None,
        description="Broker that approvals publish the deployment to; None: do not publish",
    )
    mqtt_prefix: str = Field(default=MqttConfig().prefix, description="MQTT topic prefix")
    mqtt_timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for the broker")
    mqtt_password_env: str = Field(
        default=MqttConfig().password_env, description="Env var with the broker password"
    )
    mqtt_password_file: str | None = Field(default=None, description="File with the password")
    mqtt_ca_file: str | None = Field(default=None, description="CA bundle for mqtts://")
    mqtt_cert_file: str | None = Field(default=None, description="Client certificate")
    mqtt_key_file: str | None = Field(default=None, description="Client certificate's key")
    artifact_base_url: str | None = Field(
        default=None, description="Base URL put in deployment messages; default: file:// URLs"
    )


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
    settings: WebSettings | None = None,
    registry: Registry | None = None,
    deployer: Deployer | None = None,
) -> FastAPI:
    """Build the app.

    Args:
        settings: Server settings; defaults read nothing from the environment.
        registry: The registry to serve; default ``open_registry(settings.registry_uri)``.
        deployer: Publishes deployments on approval; default an ``MqttDeployer`` when
            ``settings.mqtt_url`` is set, else approvals are recorded without publishing.
    """
    from whichbin.web.routes import artifacts, dashboard, health, models

    settings = settings or WebSettings()
    if registry is None:
        from whichbin.registry import open_registry

        registry = open_registry(settings.registry_uri, default_name=settings.model_name)
    if deployer is None and settings.mqtt_url:
        deployer = MqttDeployer(
            settings.mqtt_url,
            settings.mqtt_prefix,
            settings.mqtt_timeout,
            password_env=settings.mqtt_password_env,
            password_file=settings.mqtt_password_file,
            ca_file=settings.mqtt_ca_file,
            cert_file=settings.mqtt_cert_file,
            key_file=settings.mqtt_key_file,
        )

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
