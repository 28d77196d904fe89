"""``whichbin users``: who may use the web API, with which role, and their API tokens.

Passwords come from a hidden prompt, an environment variable or a file: never from argv,
where ``ps`` and the shell history would show them.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from whichbin.cli.options import ConfigOpt, JsonOpt, RegistryOpt, load_config
from whichbin.errors import ConfigError

app = typer.Typer(
    help="Web API users: add, list, remove, and create API tokens.\n\n"
    "Example: whichbin users add alice --role approver",
    no_args_is_help=True,
)


def _store(config: Path | None, registry: str | None):  # noqa: ANN202 - argon2 loads lazily
    """The users store of ``--registry``, else of ``pipeline.registry.uri`` in the config
    (the return type is not named: argon2 stays out of the CLI's import time)."""
    from whichbin.security.users import UserStore

    uri = load_config(config, {"pipeline.registry.uri": registry}).pipeline.registry.uri
    return UserStore.for_registry(uri)


def _password(env: str | None, file: Path | None) -> str:
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"--password-env {env}: the variable is not set")
        return value
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--password-file {file}: cannot read it ({e})") from e
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command()
def add(
    name: str = typer.Argument(..., help="User name"),
    role: str = typer.Option("viewer", "--role", help="viewer, approver or admin"),
    password_env: str | None = typer.Option(
        None, "--password-env", help="Read the password from this environment variable"
    ),
    password_file: Path | None = typer.Option(
        None, "--password-file", help="Read the password from this file (first line)"
    ),
    registry: RegistryOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Add a user (password prompted for, unless --password-env or --password-file).

    Example: whichbin users add alice --role approver
    """
    from whichbin.security.users import check_name, check_role

    check_name(name)
    check_role(role)
    user = _store(config, registry).add(name, role, _password(password_env, password_file))
    typer.echo(f"added {user.name} ({user.role})")


@app.command("list")
def list_(
    registry: RegistryOpt = None, config: ConfigOpt = None, json_out: JsonOpt = False
) -> None:
    """List users, their roles and how many API tokens each has.

    Example: whichbin users list --json
    """
    from whichbin.cli.output import emit_json

    users = _store(config, registry).list()
    if json_out:
        emit_json([u.to_json() for u in users])
        return
    for u in users:
        typer.echo(f"{u.name}\t{u.role}\t{u.tokens} tokens\tsince {u.created}")
    if not users:
        typer.echo("no users; add one: whichbin users add NAME --role admin", err=True)


@app.command()
def remove(
    name: str = typer.Argument(..., help="User name"),
    registry: RegistryOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Remove a user and every API token of theirs.

    Example: whichbin users remove alice
    """
    _store(config, registry).remove(name)
    typer.echo(f"removed {name}")


@app.command()
def token(
    name: str = typer.Argument(..., help="User name"),
    label: str = typer.Option("", "--label", help="What the token is for (shown in logs)"),
    revoke: bool = typer.Option(False, "--revoke", help="Delete all of the user's tokens"),
    registry: RegistryOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create an API token (printed once on stdout: store it now), or --revoke them all.

    Example: whichbin users token ci-bot --label "nightly pipeline"
    """
    store = _store(config, registry)
    if revoke:
        typer.echo(f"revoked {store.revoke_tokens(name)} tokens of {name}", err=True)
        return
    typer.echo(store.create_token(name, label))
    typer.echo("This token is shown once; whichbin keeps only its hash.", err=True)


def register(root: typer.Typer) -> None:
    """Add ``users`` to the root app."""
    root.add_typer(app, name="users")
