"""``whichbin certs``: a local CA plus broker and device certificates for MQTT over TLS."""

from __future__ import annotations

from pathlib import Path

import typer

from whichbin.cli.options import JsonOpt
from whichbin.cli.output import emit_json, err_console

app = typer.Typer(
    help="Certificates for MQTT over TLS (mqtts://): a local CA, the broker, each device.\n\n"
    "Example: whichbin certs create ./certs --broker-host broker.local --client kitchen",
    no_args_is_help=True,
)


@app.command("create")
def create_cmd(
    folder: Path = typer.Argument(..., help="Folder for ca.crt/ca.key and the certificates"),
    broker_host: list[str] = typer.Option(
        [], "--broker-host", help="DNS name or IP clients use for the broker (repeatable)"
    ),
    client: list[str] = typer.Option(
        [],
        "--client",
        help="A client certificate with this name: a device id, 'registry', a display (repeatable)",
    ),
    json_out: JsonOpt = False,
) -> None:
    """Create (or reuse) the CA in FOLDER and issue broker and client certificates.

    Keys are written mode 0600. Give the broker ca.crt, broker.crt and broker.key (see
    deploy/mosquitto/README.md); give each device ca.crt and its own NAME.crt/NAME.key
    (mqtt.ca_file, mqtt.cert_file, mqtt.key_file).

    Example: whichbin certs create ./certs --broker-host broker.local --client kitchen
    """
    from whichbin.security.certs import create_certificates

    issued = create_certificates(folder, broker_host, client)
    if json_out:
        emit_json([{"name": i.name, "cert": str(i.cert), "key": str(i.key)} for i in issued])
        return
    for i in issued:
        err_console.print(f"{i.name}: {i.cert} (key {i.key})")
