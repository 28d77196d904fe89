"""``whichbin web``: serve the dashboard, the REST API and the artifacts edges download."""

from __future__ import annotations

from typing import Any

import typer

from whichbin.cli.options import (
    ArtifactBaseUrlOpt,
    ConfigOpt,
    NoDeployOpt,
    RegistryOpt,
    broker_options,
    load_config,
)


def register(app: typer.Typer) -> None:
    """Add the ``web`` command to the root app."""
    app.command("web")(web)


@broker_options
def web(
    host: str | None = typer.Option(
        None, "--host", help="Address to listen on (0.0.0.0: all) [default: 127.0.0.1]"
    ),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="TCP port [default: 8080]"
    ),
    config: ConfigOpt = None,
    registry: RegistryOpt = None,
    no_deploy: NoDeployOpt = False,
    artifact_base_url: ArtifactBaseUrlOpt = None,
    broker: dict[str, Any] | None = None,
) -> None:
    """Serve the dashboard (/), the REST API (/api/models, docs at /docs) and /artifacts.

    Approvals publish the deployment to the --mqtt broker unless --no-deploy.

    Example: whichbin web --host 0.0.0.0 --port 8080 --artifact-base-url http://myhost:8080
    """
    import uvicorn

    from whichbin.cli.output import err_console
    from whichbin.messaging.mqtt import parse_mqtt_url
    from whichbin.web import create_app

    settings = load_config(
        config,
        {
            **(broker or {}),
            "web.host": host,
            "web.port": port,
            "web.publish": False if no_deploy else None,
            "pipeline.registry.uri": registry,
            "deploy.artifact_base_url": artifact_base_url,
        },
    )
    if settings.web.publish:
        parse_mqtt_url(settings.mqtt.url)  # a typo fails before the server starts
    application = create_app(settings)
    w = settings.web
    err_console.print(
        f"whichbin web on http://{w.host}:{w.port}/ (registry {settings.pipeline.registry.uri})"
    )
    uvicorn.run(application, host=w.host, port=w.port, log_level="info")
