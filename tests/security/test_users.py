"""The web API's users: roles, argon2 passwords, hashed API tokens, and the CLI that manages
them (passwords never in argv)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from whichbin.cli.main import app
from whichbin.security.users import ACTIONS, ROLES, UserError, UserStore, allowed

runner = CliRunner()
PASSWORD = "correct horse battery"


def test_role_rules() -> None:
    table = {role: {a for a in ACTIONS if allowed(role, a)} for role in (None, *ROLES)}
    assert table[None] == {"read"}  # pending and rejected artifacts need a login
    assert table["viewer"] == {"read", "read_pending"}
    assert table["approver"] == {"read", "read_pending", "approve", "reject", "deploy"}
    assert table["admin"] == set(ACTIONS)
    assert not allowed("mallory", "read_pending")  # an unknown role is anonymous at best
    with pytest.raises(ValueError, match="unknown action"):
        allowed("admin", "aprove")


def test_passwords_are_argon2_and_checked(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.sqlite")
    user = store.add("alice", "approver", PASSWORD)
    assert (user.name, user.role) == ("alice", "approver")
    assert store.authenticate("alice", PASSWORD) == user
    assert store.authenticate("alice", PASSWORD + "!") is None
    assert store.authenticate("bob", PASSWORD) is None
    (stored,) = sqlite3.connect(tmp_path / "users.sqlite").execute("SELECT password FROM users")
    assert stored[0].startswith("$argon2id$") and PASSWORD not in stored[0]


def test_bad_names_roles_passwords_and_duplicates(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.sqlite")
    for name, role, password, match in [
        ("al ice", "viewer", PASSWORD, "user name"),
        ("../x", "viewer", PASSWORD, "user name"),
        ("alice", "root", PASSWORD, "--role root"),
        ("alice", "viewer", "short", "at least 12"),
    ]:
        with pytest.raises(UserError, match=match):
            store.add(name, role, password)
    store.add("alice", "viewer", PASSWORD)
    with pytest.raises(UserError, match="exists"):
        store.add("alice", "admin", PASSWORD)
    with pytest.raises(UserError, match="no user 'bob'"):
        store.remove("bob")


def test_tokens_are_shown_once_stored_hashed_and_die_with_the_user(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.sqlite")
    store.add("ci", "approver", PASSWORD)
    token = store.create_token("ci", "nightly")
    assert token.startswith("wb_") and len(token) > 40
    assert store.user_for_token(token).name == "ci"  # type: ignore[union-attr]
    assert store.user_for_token(token[:-1] + "x") is None
    assert store.user_for_token("") is None
    rows = sqlite3.connect(tmp_path / "users.sqlite").execute("SELECT * FROM tokens").fetchall()
    assert token not in repr(rows)
    assert store.get("ci").tokens == 1  # type: ignore[union-attr]
    store.remove("ci")
    assert store.user_for_token(token) is None
    with pytest.raises(UserError, match="no user 'ci'"):
        store.create_token("ci")


def test_cli_add_list_token_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = str(tmp_path / "registry")
    res = runner.invoke(
        app,
        ["users", "add", "alice", "--role", "admin", "--registry", reg],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert res.exit_code == 0, res.output
    monkeypatch.setenv("BOB_PASSWORD", PASSWORD)
    res = runner.invoke(
        app, ["users", "add", "bob", "--password-env", "BOB_PASSWORD", "--registry", reg]
    )
    assert res.exit_code == 0, res.output
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    res = runner.invoke(
        app,
        [
            "users",
            "add",
            "carol",
            "--role",
            "approver",
            "--password-file",
            str(secret),
            "--registry",
            reg,
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["users", "token", "carol", "--registry", reg])
    assert res.exit_code == 0, res.output
    token = res.stdout.strip()
    store = UserStore(tmp_path / "registry" / "users.sqlite")
    assert store.user_for_token(token).role == "approver"  # type: ignore[union-attr]
    assert store.authenticate("bob", PASSWORD).role == "viewer"  # type: ignore[union-attr]
    res = runner.invoke(app, ["users", "list", "--json", "--registry", reg])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [(u["name"], u["role"], u["tokens"]) for u in doc] == [
        ("alice", "admin", 0),
        ("bob", "viewer", 0),
        ("carol", "approver", 1),
    ]
    assert PASSWORD not in res.output and token not in res.output
    res = runner.invoke(app, ["users", "remove", "carol", "--registry", reg])
    assert res.exit_code == 0 and store.user_for_token(token) is None


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    reg = str(tmp_path / "registry")
    res = runner.invoke(
        app, ["users", "add", "bob", "--password-env", "NOPE_UNSET", "--registry", reg]
    )
    assert res.exit_code == 1 and "NOPE_UNSET" in res.output
    res = runner.invoke(app, ["users", "add", "bob", "--role", "god", "--registry", reg])
    assert res.exit_code == 1 and "--role god" in res.output  # refused before the prompt
    res = runner.invoke(app, ["users", "remove", "nobody", "--registry", reg])
    assert res.exit_code == 1 and "no user 'nobody'" in res.output
    res = runner.invoke(app, ["users", "list", "--registry", "sagemaker://group"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    res = runner.invoke(app, ["users", "add", "--help"])
    assert res.exit_code == 0 and "Example: whichbin users add" in res.output
    assert "--password " not in res.output  # never a password in argv
