"""``whichbin registry``: list, show, approve (→ deploy), reject and re-deploy model versions."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from whichbin.cli.options import (
    ArtifactBaseUrlOpt,
    ConfigOpt,
    JsonOpt,
    NoDeployOpt,
    RegistryOpt,
    TimeoutOpt,
    broker_options,
    load_config,
)
from whichbin.cli.tables import per_source_table, pins_table, print_whole, versions_table
from whichbin.config import Settings
from whichbin.errors import DeployError
from whichbin.registry.base import Registry

if TYPE_CHECKING:
    from whichbin.deploy.publish import MqttDeployer

app = typer.Typer(
    help="Model versions: metrics, gate result, lineage and human approval.\n\n"
    "Example: whichbin registry list",
    no_args_is_help=True,
)


def _default_user() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return ""


def _settings(config: Path | None, registry: str | None, **flags: Any) -> Settings:
    """The config file, the environment, then ``--registry`` and ``flags`` (dotted keys)."""
    return load_config(config, {"pipeline.registry.uri": registry, **flags})


def _open(settings: Settings) -> Registry:
    from whichbin.registry import open_registry

    # Reading or approving never creates a registry: a typo in --registry should fail.
    reg = settings.pipeline.registry
    return open_registry(reg.uri, default_name=reg.model_name, create=False)


@app.command("list")
def list_cmd(
    name: str = typer.Option(None, "--name", help="Only versions of this model"),
    registry: RegistryOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List model versions with headline metrics, gate result and approval status; the live
    version (the current approval, which the fleet runs) is marked.

    Example: whichbin registry list --json
    """
    from rich.console import Console

    from whichbin.cli.output import emit_json
    from whichbin.registry.view import live_ids

    reg = _open(_settings(config, registry))
    versions = reg.list(name)
    live = live_ids(reg, (v.name for v in versions))
    if json_out:
        emit_json([{**v.model_dump(mode="json"), "live": v.id in live} for v in versions])
        return
    console = Console()
    if not versions:
        console.print(f"No model versions in {reg.uri} yet.", soft_wrap=True, markup=False)
        return
    table = versions_table(versions, live, wide=console.width >= 110)
    # The registry path on a line of its own: a table title would break it mid-word.
    console.print(f"Model versions in {reg.uri}", soft_wrap=True, markup=False)
    print_whole(table, console.width)


@app.command("show")
def show_cmd(
    version: str = typer.Argument(..., help="NAME/N (e.g. trash-classifier/7) or N"),
    registry: RegistryOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one version: metrics, gate reasons, lineage, approval and its history, and the
    test split per data source (how it does on each place's photos).

    Example: whichbin registry show trash-classifier/7 --json
    """
    from rich.console import Console

    from whichbin.cli.output import emit_json
    from whichbin.registry.view import live_ids, render_rows, version_sections

    reg = _open(_settings(config, registry))
    v = reg.get(version)
    history = reg.history(v.id)
    if json_out:
        doc = v.model_dump(mode="json")
        doc["history"] = [e.model_dump(mode="json") for e in history]
        emit_json(doc)
        return
    # Lines are never wrapped (soft_wrap): a path or hash stays whole at any width.
    console = Console(soft_wrap=True, highlight=False)
    sections = version_sections(v, history, live=v.id in live_ids(reg, [v.name]))
    for i, (title, rows) in enumerate(sections):
        if i and not rows:
            continue
        console.print(("" if i == 0 else "\n") + title, style="bold", markup=False)
        for line in render_rows(rows):
            console.print(line, markup=False)
    per_source = v.metrics.get("per_source")
    if isinstance(per_source, dict) and per_source:
        print_whole(per_source_table(per_source))


def _deployer(settings: Settings) -> MqttDeployer:
    from whichbin.deploy import MqttDeployer
    from whichbin.messaging.mqtt import parse_mqtt_url

    parse_mqtt_url(settings.mqtt.url)  # a typo fails here, before anything is recorded
    return MqttDeployer(settings.mqtt, settings.deploy.timeout)


def _deploy_settings(
    config: Path | None,
    registry: str | None,
    broker: dict[str, Any] | None,
    artifact_base_url: str | None,
    timeout: float | None,
) -> Settings:
    """Settings for the commands that publish a deployment."""
    deploy = {"deploy.artifact_base_url": artifact_base_url, "deploy.timeout": timeout}
    return _settings(config, registry, **(broker or {}), **deploy)


@app.command("live")
def live_cmd(
    name: str = typer.Argument(None, help="Model name (default: trash-classifier)"),
    registry: RegistryOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Say which version is live: the current approval, whose deployment the fleet's
    retained message carries (approving publishes it; approving an older one rolls back).

    Exit code 1 when no version of the model is approved.

    Example: whichbin registry live trash-classifier --json
    """
    from rich.console import Console

    from whichbin.cli.output import emit_json
    from whichbin.errors import RegistryError

    reg = _open(_settings(config, registry))
    model = name or reg.default_name
    v = reg.latest_approved(model)
    if v is None:
        raise RegistryError(
            f"{model}: no live version in {reg.uri} (none is approved): approve one with "
            f"`whichbin registry approve {model}/N`"
        )
    if json_out:
        emit_json({**v.model_dump(mode="json"), "live": True})
        return
    note = f" ({v.note})" if v.note else ""
    Console(soft_wrap=True, highlight=False).print(
        f"{v.id} is live: approved by {v.approved_by} at {v.approved_at}{note}, "
        f"sha256 {v.sha256[:12]}, gate {v.gate}",
        markup=False,
    )


@app.command("approve")
@broker_options
def approve_cmd(
    version: str = typer.Argument(..., help="NAME/N (e.g. trash-classifier/7) or N"),
    by: str = typer.Option(None, "--by", help="Who approves (default: $USER)"),
    note: str = typer.Option("", "--note", help="Why, for the audit trail"),
    registry: RegistryOpt = None,
    config: ConfigOpt = None,
    no_deploy: NoDeployOpt = False,
    artifact_base_url: ArtifactBaseUrlOpt = None,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
    broker: dict[str, Any] | None = None,
) -> None:
    """Approve a version whose quality gate passed, and deploy it to the fleet.

    Publishes the retained whichbin/fleet/deployment message (unless --no-deploy).

    Approving an older approved version again rolls the fleet back to it.

    Exit code 1 if the gate failed, or if the approval was recorded but not published.

    Example: whichbin registry approve trash-classifier/7 --note "beats v6 on bottles"
    """
    from whichbin.cli.output import emit_json, err_console
    from whichbin.contract import utc_now
    from whichbin.deploy import approve_and_deploy, not_published_message, signing_key_path

    settings = _deploy_settings(config, registry, broker, artifact_base_url, timeout)
    reg = _open(settings)
    deployer = None if no_deploy else _deployer(settings)
    base_url = settings.deploy.artifact_base_url
    outcome = approve_and_deploy(
        reg, version, by or _default_user(), note, deployer, utc_now(), base_url=base_url,
        signing_key=signing_key_path(settings.deploy),
    )  # fmt: skip
    if json_out:
        emit_json(outcome.to_dict())
    v = outcome.version
    if outcome.error:
        raise DeployError(not_published_message(outcome, reg.uri, settings.mqtt.url))
    err_console.print(f"{v.id} approved by {v.approved_by}")
    if outcome.published:
        err_console.print(f"deployment published to {outcome.topic} (retained): {v.sha256[:12]}")
    else:
        err_console.print(
            f"deployment not published (--no-deploy); later: whichbin registry deploy {v.id}"
        )
    for pin in outcome.pinned:
        err_console.print(
            f"[yellow]note:[/] {pin.device} is pinned to {pin.version} and does not follow "
            f"(`whichbin registry unpin {pin.device}`)"
        )


@app.command("reject")
@broker_options
def reject_cmd(
    version: str = typer.Argument(..., help="NAME/N (e.g. trash-classifier/7) or N"),
    reason: str = typer.Option(..., "--reason", help="Why, for the audit trail"),
    by: str = typer.Option(None, "--by", help="Who rejects (default: $USER)"),
    registry: RegistryOpt = None,
    config: ConfigOpt = None,
    no_deploy: NoDeployOpt = False,
    artifact_base_url: ArtifactBaseUrlOpt = None,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
    broker: dict[str, Any] | None = None,
) -> None:
    """Reject a version (or withdraw an approval).

    Rejecting the live version retracts its fleet deployment: the fleet goes back on the
    now-current approval, or its retained message is cleared (unless --no-deploy).
    Exit code 1 if the rejection was recorded but the retraction could not be published.

    Example: whichbin registry reject trash-classifier/7 --reason "confuses cups and lids"
    """
    from whichbin.cli.output import emit_json, err_console
    from whichbin.contract import utc_now
    from whichbin.deploy import fleet_now, reject_and_retract, signing_key_path

    settings = _deploy_settings(config, registry, broker, artifact_base_url, timeout)
    reg = _open(settings)
    deployer = None if no_deploy else _deployer(settings)
    outcome = reject_and_retract(
        reg, version, reason, by or _default_user(), deployer, utc_now(),
        base_url=settings.deploy.artifact_base_url,
        signing_key=signing_key_path(settings.deploy),
    )  # fmt: skip
    if json_out:
        emit_json(outcome.rejection_dict())
    v = outcome.version
    err_console.print(f"{v.id} rejected: {v.rejected_reason}")
    if outcome.error:
        raise DeployError(outcome.error)
    if outcome.retracted:
        err_console.print(f"its fleet deployment was retracted: {fleet_now(outcome.deployment)}")
    if outcome.warning:
        err_console.print(f"[yellow]warning:[/] {outcome.warning}")


@app.command("deploy")
@broker_options
def deploy_cmd(
    version: str = typer.Argument(None, help="NAME/N or N (default: the latest approved version)"),
    device: str = typer.Option(
        None, "--device", help="Pin this device to the version (whichbin/<device>/deployment)"
    ),
    by: str = typer.Option(None, "--by", help="Who deploys (default: $USER)"),
    reason: str = typer.Option(
        "", "--reason", help="Why, for the audit trail; needed for a fleet rollback"
    ),
    registry: RegistryOpt = None,
    config: ConfigOpt = None,
    artifact_base_url: ArtifactBaseUrlOpt = None,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
    broker: dict[str, Any] | None = None,
) -> None:
    """Publish (again) the deployment message of an approved version.

    Use it when an approval could not reach the broker, to roll the fleet back to an older
    approved version (--reason; recorded as a rollback), or to pin one --device to a
    version: it then ignores fleet approvals until `whichbin registry unpin DEVICE`.

    Example: whichbin registry deploy trash-classifier/7 --mqtt mqtt://broker.local
    """
    from whichbin.cli.output import emit_json, err_console
    from whichbin.contract import utc_now
    from whichbin.deploy import deploy_version, signing_key_path
    from whichbin.errors import RegistryError

    settings = _deploy_settings(config, registry, broker, artifact_base_url, timeout)
    reg = _open(settings)
    if version is None:
        v = reg.latest_approved(reg.default_name)
        if v is None:
            raise RegistryError(f"{reg.default_name}: no approved version in {reg.uri} to deploy")
    else:
        v = reg.get(version)
    outcome = deploy_version(
        reg, v, _deployer(settings), utc_now(), settings.deploy.artifact_base_url, device,
        by=by or _default_user(), reason=reason, signing_key=signing_key_path(settings.deploy),
    )  # fmt: skip
    if json_out:
        emit_json(outcome.to_dict())
    if outcome.retracted:
        raise DeployError(str(outcome.error))
    err_console.print(f"deployment of {v.id} published to {outcome.topic} (retained)")
    if outcome.pin:
        err_console.print(
            f"{device} is pinned to {v.id}: it ignores fleet approvals until "
            f"`whichbin registry unpin {device}`"
        )


# -- device pins: `deploy --device` sets one; these list and remove them ---------------
@app.command("devices")
def devices_cmd(
    registry: RegistryOpt = None, config: ConfigOpt = None, json_out: JsonOpt = False
) -> None:
    """List devices pinned to a version (they ignore fleet approvals).

    Example: whichbin registry devices --json
    """
    from rich.console import Console

    from whichbin.cli.output import emit_json, err_console

    pins = _open(_settings(config, registry)).pins()
    if json_out:
        emit_json([p.model_dump(mode="json") for p in pins])
        return
    if not pins:
        err_console.print("No pinned devices: every device follows the fleet deployment.")
        return
    Console().print(pins_table(pins))


@app.command("unpin")
@broker_options
def unpin_cmd(
    device: str = typer.Argument(..., help="The device id"),
    by: str = typer.Option(None, "--by", help="Who unpins (default: $USER)"),
    registry: RegistryOpt = None,
    config: ConfigOpt = None,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
    broker: dict[str, Any] | None = None,
) -> None:
    """Unpin a device: clear its retained deployment so it follows the fleet again.

    Example: whichbin registry unpin bin-1 --mqtt mqtt://broker.local
    """
    from whichbin.cli.output import emit_json, err_console
    from whichbin.contract import check_device_id

    check_device_id(device, "DEVICE")
    settings = _deploy_settings(config, registry, broker, None, timeout)
    reg = _open(settings)
    topic = _deployer(settings).clear(device)  # cleared first: then recorded
    pin = reg.unpin(device, by or _default_user())
    if json_out:
        unpinned = pin.model_dump(mode="json") if pin else None
        emit_json({"device": device, "topic": topic, "unpinned": unpinned})
    was = f"(was on {pin.version})" if pin else "(it was not pinned in the registry)"
    err_console.print(f"{device} unpinned {was}: cleared {topic}; it follows the fleet again")
