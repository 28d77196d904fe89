"""``whichbin keys``: the approver's deployment signing key (create, show the public key)."""

from __future__ import annotations

from pathlib import Path

import typer

from whichbin.cli.options import ConfigOpt, JsonOpt, load_config
from whichbin.cli.output import emit_json, err_console

app = typer.Typer(
    help="The key approvals sign deployments with; devices trust its public key.\n\n"
    "Example: whichbin keys create && whichbin keys show --pem > registry.pub.pem",
    no_args_is_help=True,
)

KeyOpt = typer.Option(
    None,
    "--key",
    help="Private key file "
    "\\[default: deploy.signing_key, else ~/.config/whichbin/signing-key.pem]",
)


def _key_path(key: Path | None, config: Path | None) -> Path:
    from whichbin.security.keys import default_key_path

    if key is not None:
        return key
    configured = load_config(config).deploy.signing_key  # or WHICHBIN_DEPLOY__SIGNING_KEY
    return Path(configured) if configured else default_key_path()


@app.command("create")
def create_cmd(
    key: Path = KeyOpt,
    public_out: Path | None = typer.Option(
        None, "--public-out", help="Also write the public key (PEM) here, for the devices"
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing key"),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an Ed25519 signing key (file mode 0600) for approvals.

    Rotation: create the new key at another path, add its public key to every device's
    edge.security.trusted_keys next to the old one, switch deploy.signing_key to it, and
    remove the old public key from the devices once the new deployment is active.

    Example: whichbin keys create --public-out registry.pub.pem
    """
    from whichbin.security.keys import create_key_file, write_public_key

    path = _key_path(key, config)
    signer = create_key_file(path, force=force)
    if public_out is not None:
        write_public_key(signer, public_out)
    if json_out:
        emit_json(
            {
                "key_id": signer.key_id,
                "path": str(path),
                "public_key": signer.public_pem().decode("ascii"),
            }
        )
        return
    err_console.print(f"signing key {signer.key_id} written to {path} (mode 0600)")
    if public_out is not None:
        err_console.print(
            f"public key written to {public_out}: list it in the devices' "
            "edge.security.trusted_keys"
        )


@app.command("show")
def show_cmd(
    key: Path = KeyOpt,
    pem: bool = typer.Option(False, "--pem", help="Print only the public key PEM"),
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the key id and the public key that devices trust.

    A public key file (--key device.pub.pem) shows its key id too.

    Example: whichbin keys show --pem > registry.pub.pem
    """
    from whichbin.errors import ConfigError
    from whichbin.security.signing import Signer, TrustedKeys, public_pem

    path = _key_path(key, config)
    if not path.is_file():
        raise ConfigError(f"{path}: no key there (create one with `whichbin keys create`)")
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        signer = Signer.from_pem(data, str(path))
        kid, text = signer.key_id, signer.public_pem().decode("ascii")
    else:
        trusted = TrustedKeys.from_files([path])
        kid = next(iter(trusted))
        text = public_pem(trusted[kid]).decode("ascii")
    if json_out:
        emit_json({"key_id": kid, "path": str(path), "public_key": text})
    elif pem:
        typer.echo(text, nl=False)
    else:
        typer.echo(f"key id: {kid}\n{text}", nl=False)
