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
        None,
        "--host",
        help="Address to listen on \\[default: 127.0.0.1]; another address needs a user "
        "(whichbin users add) and that name in web.allowed_hosts",
    ),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="TCP port \\[default: 8080]"
    ),
    config: ConfigOpt = None,
    registry: RegistryOpt = None,
    no_deploy: NoDeployOpt = False,
    artifact_base_url: ArtifactBaseUrlOpt = None,
    broker: dict[str, Any] | None = None,
) -> None:
    """Serve the dashboard (/), the REST API (/api/models, docs at /docs) and /artifacts.

    Approvals publish the deployment to the --mqtt broker unless --no-deploy. Writes need
    a user (whichbin users add); see docs/security.md.

    Example: whichbin web --host 192.168.1.20 --artifact-base-url http://192.168.1.20:8080
    """
    import uvicorn

    from whichbin.cli.output import err_console
    from whichbin.errors import ConfigError
    from whichbin.messaging.mqtt import parse_mqtt_url
    from whichbin.web import create_app
    from whichbin.web.guards import is_loopback

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
    if not is_loopback(w.host) and not application.state.auth.has_users():
        raise ConfigError(
            f"web.host {w.host}: refusing to serve the network with no users "
            "(add one: whichbin users add NAME --role admin), or use --host 127.0.0.1"
        )
    err_console.print(
        f"whichbin web on http://{w.host}:{w.port}/ (registry {settings.pipeline.registry.uri})"
    )
    uvicorn.run(application, host=w.host, port=w.port, log_level="info")
