"""``whichbin web``: serve the dashboard, the REST API and the artifacts edges download."""

from __future__ import annotations

import typer

from whichbin.config import MqttConfig, RegistryConfig


def register(app: typer.Typer) -> None:
    """Add the ``web`` command to the root app."""
    app.command("web")(web)


def web(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: all)"),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="TCP port"),
    registry: str = typer.Option(
        RegistryConfig().uri,
        "--registry",
        envvar="WHICHBIN_REGISTRY",
        help="Registry: a local directory or sagemaker://GROUP",
    ),
    mqtt: str = typer.Option(
        MqttConfig().url,
        "--mqtt",
        envvar="WHICHBIN_MQTT",
        help="Broker approvals publish the deployment to (password from WHICHBIN_MQTT_PASSWORD)",
    ),
    no_deploy: bool = typer.Option(
        False, "--no-deploy", help="Record approvals without publishing deployments"
    ),
    artifact_base_url: str = typer.Option(
        None,
        "--artifact-base-url",
        envvar="WHICHBIN_ARTIFACT_BASE_URL",
        help="URL edges reach this server at, put in deployment messages "
        "(e.g. http://host:8080); default: file:// URLs",
    ),
    prefix: str = typer.Option(MqttConfig().prefix, "--prefix", help="MQTT topic prefix"),
) -> None:
    """Serve the dashboard (/), the REST API (/api/models, docs at /docs) and /artifacts.

    Example: whichbin web --host 0.0.0.0 --port 8080 --artifact-base-url http://myhost:8080
    """
    import uvicorn

    from whichbin.cli.output import err_console
    from whichbin.config import load_settings
    from whichbin.messaging.mqtt import parse_mqtt_url
    from whichbin.web import WebSettings, create_app

    if not no_deploy:
        parse_mqtt_url(mqtt)
    cfg = load_settings().mqtt  # password file and CA bundle: WHICHBIN_MQTT__PASSWORD_FILE, ...
    settings = WebSettings(
        registry_uri=registry,
        mqtt_url=None if no_deploy else mqtt,
        mqtt_prefix=prefix,
        mqtt_password_env=cfg.password_env,
        mqtt_password_file=cfg.password_file,
        mqtt_ca_file=cfg.ca_file,
        mqtt_cert_file=cfg.cert_file,
        mqtt_key_file=cfg.key_file,
        artifact_base_url=artifact_base_url,
    )
    application = create_app(settings)
    err_console.print(f"whichbin web on http://{host}:{port}/ (registry {registry})")
    uvicorn.run(application, host=host, port=port, log_level="info")
