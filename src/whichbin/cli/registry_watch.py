"""``whichbin registry watch``: poll the SageMaker Model Registry and deploy each approval
(for teams without EventBridge; the same path as the approval handler)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from whichbin.cli.options import ConfigOpt, RegistryOpt, broker_options, load_config


@broker_options
def watch_cmd(
    registry: RegistryOpt = None,
    config: ConfigOpt = None,
    signing_key: Path = typer.Option(
        None, "--signing-key", help="Approver's private key \\[default: deploy.signing_key]"
    ),
    signing_secret: str = typer.Option(
        None, "--signing-secret", help="...or its AWS Secrets Manager secret id"
    ),
    interval: float = typer.Option(60.0, "--interval", min=1, help="Seconds between polls"),
    expires: int = typer.Option(43200, "--url-expires", min=60, help="Presigned URL lifetime (s)"),
    once: bool = typer.Option(False, "--once", help="Poll once, deploy the approval, exit"),
    broker: dict[str, Any] | None = None,
) -> None:
    """Deploy every new approval in a SageMaker model package group to the fleet.

    Publishes the retained whichbin/fleet/deployment message with a presigned HTTPS URL,
    and republishes it once 80 % of the URL's lifetime (--url-expires) has passed, so a
    device that connects later never gets an expired URL.

    Example: whichbin registry watch --registry "sagemaker://trash-classifier?bucket=b"
    --mqtt mqtts://registry@broker:8883 --signing-key approver.pem
    """
    import boto3

    from whichbin.cli.output import err_console
    from whichbin.deploy.publish import MqttDeployer
    from whichbin.deploy.sagemaker_events import (
        REPUBLISH_AT,
        ApprovalDeployer,
        signer_from_secret,
        watch_approvals,
    )
    from whichbin.errors import ConfigError
    from whichbin.messaging.mqtt import parse_mqtt_url
    from whichbin.registry import open_registry
    from whichbin.security.keys import load_signer

    settings = load_config(config, {"pipeline.registry.uri": registry, **(broker or {})})
    uri = settings.pipeline.registry.uri
    if not uri.startswith("sagemaker://"):
        raise ConfigError(f"--registry {uri}: watch needs a sagemaker://GROUP registry")
    if interval > expires * (1 - REPUBLISH_AT):
        raise ConfigError(
            f"--interval {interval:g}: poll at least every {expires * (1 - REPUBLISH_AT):g}s "
            f"(a fifth of --url-expires {expires}), or the republished URL may expire first"
        )
    parse_mqtt_url(settings.mqtt.url)  # a typo fails here, before anything is read
    reg = open_registry(uri, settings.pipeline.registry.model_name, create=False)
    if signing_secret:
        signer = signer_from_secret(signing_secret, boto3.client("secretsmanager"))
    else:
        signer = load_signer(signing_key or settings.deploy.signing_key)
    deployer = MqttDeployer(settings.mqtt, settings.deploy.timeout)
    approvals = ApprovalDeployer(boto3.client("s3"), deployer, signer, expires)

    def deploy(version):  # noqa: ANN001, ANN202
        _, topic = approvals.deploy(version)
        err_console.print(f"{version.id} deployed to {topic} ({version.sha256[:12]})")

    err_console.print(f"watching {reg.uri} for approvals every {interval:g}s")
    group = getattr(reg, "default_name", "")
    republish = expires * REPUBLISH_AT
    watch_approvals(reg, group, deploy, interval, once=once, republish_after=republish)


def register(registry_app: typer.Typer) -> None:
    """Add ``watch`` to ``whichbin registry``."""
    registry_app.command("watch")(watch_cmd)
