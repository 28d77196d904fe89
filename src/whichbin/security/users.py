"""Users of the web API: a name, a role, an argon2 password hash and hashed API tokens.

Stored in ``users.sqlite`` next to the registry (``UserStore.for_registry``). Passwords are
hashed with argon2id (argon2-cffi); API tokens are 256-bit random strings shown once and
stored as their sha256 (a fast hash is right for a secret that long: nothing to guess).

Who may do what is :func:`allowed`, a pure function of the role and the action; the web
layer asks it, the store only says who someone is.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from whichbin.errors import WhichbinError

logger = logging.getLogger(__name__)

Role = Literal["viewer", "approver", "admin"]
ROLES: tuple[str, ...] = ("viewer", "approver", "admin")
Action = Literal["read", "read_pending", "approve", "reject", "deploy", "manage_users"]
ACTIONS: tuple[str, ...] = ("read", "read_pending", "approve", "reject", "deploy", "manage_users")
# Anonymous callers read approved models and reports; any login also reads pending and
# rejected artifacts; approvers change model state; admins also manage users.
_GRANTS: dict[str | None, frozenset[str]] = {
    None: frozenset({"read"}),
    "viewer": frozenset({"read", "read_pending"}),
    "approver": frozenset({"read", "read_pending", "approve", "reject", "deploy"}),
    "admin": frozenset(ACTIONS),
}
USERS_FILE = "users.sqlite"
TOKEN_PREFIX = "wb_"
MIN_PASSWORD = 12
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


class UserError(WhichbinError):
    """A user operation is not possible (unknown user, bad name or role, weak password)."""


def allowed(role: str | None, action: str) -> bool:
    """Whether a user with ``role`` (None: not logged in) may do ``action``. Pure.

    Raises:
        ValueError: ``action`` is not one of ``ACTIONS`` (a typo must not grant or deny
            silently).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    return action in _GRANTS.get(role, frozenset())


@dataclass(frozen=True)
class User:
    """Who someone is: never carries a password or token."""

    name: str
    role: str
    created: str
    tokens: int = 0

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def check_name(name: str) -> str:
    """A user name: letters, digits and ``_ . @ -``, at most 64 characters."""
    if _NAME.fullmatch(name):
        return name
    raise UserError(
        f"user name {name[:80]!r}: use up to 64 letters, digits, '_', '.', '@', '-' "
        "(starting with a letter or digit)"
    )


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"--role {role}: expected one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    """At least ``MIN_PASSWORD`` characters; no other rules (length is what counts)."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password: use at least {MIN_PASSWORD} characters")
    return password


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _now() -> str:
    # Microseconds: a user removed and added again under the same name gets another
    # ``created``, which is what ends the old account's sessions.
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class UserStore:
    """Users and API tokens in one SQLite file. Safe to open from several processes."""

    def __init__(self, path: Path) -> None:
        from argon2 import PasswordHasher

        self.path = Path(path)
        self._hasher = PasswordHasher()
        # Verifying an unknown name costs as much as a known one: no user enumeration.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            with self._db:
                self._db.executescript(
                    "CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, role TEXT NOT NULL,"
                    " password TEXT NOT NULL, created TEXT NOT NULL);"
                    "CREATE TABLE IF NOT EXISTS tokens (hash TEXT PRIMARY KEY,"
                    " name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
                    " label TEXT NOT NULL, created TEXT NOT NULL);"
                )
        except (OSError, sqlite3.Error) as e:
            raise UserError(f"{self.path}: cannot open the users file ({e})") from e
        self._db.execute("PRAGMA foreign_keys = ON")

    @classmethod
    def for_registry(cls, registry: str | Path) -> UserStore:
        """The store of a local registry directory (``<registry>/users.sqlite``)."""
        if "://" in str(registry):
            raise UserError(f"--registry {registry}: users live next to a local registry directory")
        return cls(Path(registry) / USERS_FILE)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._db:
                yield self._db
        except sqlite3.Error as e:
            raise UserError(f"{self.path}: {e}") from e

    # -- users ----------------------------------------------------------------------
    def add(self, name: str, role: str, password: str) -> User:
        """Create a user.

        Raises:
            UserError: bad name or role, short password, or the name is taken.
        """
        check_name(name)
        check_role(role)
        digest = self._hasher.hash(check_password(password))
        created = _now()
        try:
            with self._db:
                self._db.execute(
                    "INSERT INTO users VALUES (?, ?, ?, ?)", (name, role, digest, created)
                )
        except sqlite3.IntegrityError as e:
            raise UserError(f"user {name!r} exists; remove it first to change it") from e
        logger.info("user %s added (%s)", name, role)
        return User(name, role, created)

    def list(self) -> list[User]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT u.name, u.role, u.created, COUNT(t.hash) FROM users u "
                "LEFT JOIN tokens t ON t.name = u.name GROUP BY u.name ORDER BY u.name"
            ).fetchall()
        return [User(*row) for row in rows]

    def get(self, name: str) -> User | None:
        return next((u for u in self.list() if u.name == name), None)

    def remove(self, name: str) -> None:
        """Delete a user and every token of theirs.

        Raises:
            UserError: no such user.
        """
        with self._tx() as db:
            gone = db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount
        if not gone:
            raise UserError(f"no user {name!r}; see: whichbin users list")
        logger.info("user %s removed", name)

    # -- credentials ----------------------------------------------------------------
    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None (same cost either way)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        with self._tx() as db:
            row = db.execute(
                "SELECT name, role, created, password FROM users WHERE name = ?", (name,)
            ).fetchone()
        digest = row[3] if row else self._dummy
        try:
            self._hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(digest):  # parameters were raised since
            with self._tx() as db:
                new = self._hasher.hash(password)
                db.execute("UPDATE users SET password = ? WHERE name = ?", (new, name))
        return User(row[0], row[1], row[2])

    def create_token(self, name: str, label: str = "") -> str:
        """A new API token for ``name``: returned once, stored only as its hash.

        Raises:
            UserError: no such user.
        """
        if self.get(name) is None:
            raise UserError(f"no user {name!r}; add it first: whichbin users add {name}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._tx() as db:
            db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?)",
                (_token_hash(token), name, label[:100], _now()),
            )
        logger.info("API token created for %s", name)
        return token

    def user_for_token(self, token: str) -> User | None:
        """Whose token this is, or None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self._tx() as db:
            row = db.execute(
                "SELECT u.name, u.role, u.created FROM tokens t JOIN users u ON u.name = t.name "
                "WHERE t.hash = ?",
                (_token_hash(token),),
            ).fetchone()
        return User(*row) if row else None

    def revoke_tokens(self, name: str) -> int:
        """Delete every token of ``name``; returns how many there were."""
        with self._tx() as db:
            return db.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount
