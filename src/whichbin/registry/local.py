"""``SqliteRegistry``: a local registry directory.

Layout::

    <dir>/registry.db                          versions, events (the audit trail), pins
    <dir>/artifacts/<name>/<N>/model.onnx      the registry's own copy of each artifact
    <dir>/artifacts/<name>/<N>/report[...]     the training/evaluation report, if given

Writes run in ``BEGIN IMMEDIATE`` transactions, so concurrent pipelines never get the
same version number, and an approval and its audit entry are stored together.

Artifact and report paths are stored relative to the directory, so a copied registry
serves its own files; records read back carry absolute paths under this directory.
Registries written before that (absolute paths) are migrated when opened.
"""

from __future__ import annotations

import builtins
import logging
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from whichbin.contract import iso, utc_now
from whichbin.errors import RegistryError
from whichbin.registry.base import (
    DEFAULT_MODEL_NAME,
    ApprovalStatus,
    Change,
    Gate,
    ModelVersion,
    Pin,
    Registry,
    RegistryEvent,
    check_name,
    new_pin,
)
from whichbin.registry.base import version_id as make_id
from whichbin.registry.files import (
    PATH_FIELDS,
    copy_hashing,
    copy_report,
    relative_path,
    stamp_version,
)
from whichbin.registry.inputs import Registration
from whichbin.registry.pins import PINS_SCHEMA, load_pins, pop_pin, save_pin

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL,
    number INTEGER NOT NULL,
    record TEXT NOT NULL,          -- ModelVersion as JSON
    status TEXT NOT NULL,
    gate TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (name, number)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    number INTEGER NOT NULL,
    action TEXT NOT NULL,          -- register / approve / reject / rollback / pin / unpin
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_version ON events (name, number);
"""
# PRAGMA user_version: 1 = artifact and report paths stored relative to the registry root.
SCHEMA_VERSION = 1
# Actions that make a version the current approval (latest one wins).
APPROVING = ("approve", "rollback")


class SqliteRegistry(Registry):
    """A registry in a local directory: one SQLite file plus copied artifacts."""

    def __init__(
        self,
        root: Path,
        default_name: str = DEFAULT_MODEL_NAME,
        clock: Callable[[], datetime] = utc_now,
        stamp_version: bool = True,
        create: bool = True,
    ) -> None:
        self.root = Path(root).resolve()
        self.uri = str(self.root)
        self.default_name = check_name(default_name)
        self.clock = clock
        self.stamp_version = stamp_version
        self.db_path = self.root / "registry.db"
        self.artifacts = self.root / "artifacts"
        if not create and not self.db_path.is_file():
            raise RegistryError(
                f"{self.root}: no registry here (no registry.db): pass --registry DIR "
                "(or set WHICHBIN_REGISTRY), or create one with `whichbin pipeline run`"
            )
        try:
            self.artifacts.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.executescript(SCHEMA + PINS_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise RegistryError(f"{self.root}: cannot open registry ({e})") from e
        self._migrate()

    def _migrate(self) -> None:
        """Store absolute artifact/report paths of older registries relative to the root."""
        try:
            with self._connect() as conn:
                if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
                    return
            with self._write() as conn:  # checked again: another process may have done it
                if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
                    return
                for row in conn.execute("SELECT record FROM versions").fetchall():
                    self._store(conn, self._load(row))
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as e:  # read-only copy: records are still read right (_load)
            logger.warning("%s: cannot migrate stored paths (%s)", self.db_path, e)

    # -- storage helpers -----------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the database lock from its first statement."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _load(self, row: sqlite3.Row) -> ModelVersion:
        """A stored record, its paths made absolute under this registry's root."""
        v = ModelVersion.model_validate_json(row["record"])
        paths = {
            f: str(self.root / relative_path(value, v.name, v.number, self.root))
            for f in PATH_FIELDS
            if (value := getattr(v, f))
        }
        return v.model_copy(update=paths)

    def _fetch(self, conn: sqlite3.Connection, name: str, number: int) -> ModelVersion:
        row = conn.execute(
            "SELECT record FROM versions WHERE name = ? AND number = ?", (name, number)
        ).fetchone()
        if row is None:
            raise self._not_found(name, number)
        return self._load(row)

    def _store(self, conn: sqlite3.Connection, v: ModelVersion, insert: bool = False) -> None:
        paths = {
            f: relative_path(value, v.name, v.number, self.root)
            for f in PATH_FIELDS
            if (value := getattr(v, f))
        }
        stored = v.model_copy(update=paths)
        values = (stored.model_dump_json(), v.status.value, v.gate, v.sha256, v.created)
        if insert:
            conn.execute(
                "INSERT INTO versions (record, status, gate, sha256, created, name, number) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*values, v.name, v.number),
            )
        else:
            conn.execute(
                "UPDATE versions SET record = ?, status = ?, gate = ?, sha256 = ?, created = ? "
                "WHERE name = ? AND number = ?",
                (*values, v.name, v.number),
            )

    @staticmethod
    def _event(
        conn: sqlite3.Connection, v: ModelVersion, action: str, by: str, at: str, note: str
    ) -> None:
        conn.execute(
            "INSERT INTO events (name, number, action, actor, at, note) VALUES (?, ?, ?, ?, ?, ?)",
            (v.name, v.number, action, by, at, note),
        )

    # -- Registry protocol ------------------------------------------------------------
    def _register(self, reg: Registration, gate: Gate, reasons: builtins.list[str]) -> ModelVersion:
        """Copy the artifact (and report) into the registry and record a new version."""
        name = reg.name
        staging = self.artifacts / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        tmp = staging / f"{uuid.uuid4().hex}.onnx"
        try:
            source_sha = copy_hashing(reg.artifact, tmp)
            with self._write() as conn:
                row = conn.execute(
                    "SELECT COALESCE(MAX(number), 0) + 1 FROM versions WHERE name = ?", (name,)
                ).fetchone()
                number = int(row[0])
                vid = make_id(name, number)
                if self.stamp_version:
                    stamp_version(tmp, vid, str(reg.artifact))
                from whichbin.inference import sha256_file

                sha, size = sha256_file(tmp), tmp.stat().st_size
                vdir = self.artifacts / name / str(number)
                if vdir.exists():  # left over from a crashed registration; never reused
                    shutil.rmtree(vdir)
                vdir.mkdir(parents=True)
                final = vdir / "model.onnx"
                tmp.replace(final)
                report_copy = copy_report(reg.report, vdir) if reg.report else None
                now = iso(self.clock())
                version = ModelVersion(
                    id=vid,
                    name=name,
                    number=number,
                    sha256=sha,
                    artifact=str(final),
                    size_bytes=size,
                    metrics=reg.metrics,
                    gate=gate,
                    reasons=reasons,
                    lineage={
                        **reg.lineage,
                        "source_artifact": str(reg.artifact),
                        "source_sha256": source_sha,
                    },
                    created=now,
                    report=str(report_copy) if report_copy else None,
                )
                self._store(conn, version, insert=True)
                self._event(conn, version, "register", "", now, version.gate)
        except sqlite3.Error as e:
            raise RegistryError(f"{self.db_path}: cannot register {name}: {e}") from e
        except OSError as e:
            raise RegistryError(f"{reg.artifact}: cannot copy into the registry: {e}") from e
        finally:
            tmp.unlink(missing_ok=True)
        logger.info("registered %s (gate %s, sha256 %s)", vid, version.gate, sha[:12])
        return version

    def get(self, version_id: str) -> ModelVersion:
        name, number = self._parse(version_id)
        with self._connect() as conn:
            return self._fetch(conn, name, number)

    def _change(
        self, version_id: str, action: str, change: Change, by: str, note: str
    ) -> ModelVersion:
        name, number = self._parse(version_id)
        now = self.clock()
        with self._write() as conn:
            version = change(self._fetch(conn, name, number), now)
            self._store(conn, version)
            actor = (version.approved_by or by) if action in APPROVING else by
            self._event(conn, version, action, actor, iso(now), note)
        return version

    def latest_approved(self, name: str) -> ModelVersion | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT v.record FROM versions v JOIN events e "
                "ON e.name = v.name AND e.number = v.number AND e.action IN (?, ?) "
                "WHERE v.name = ? AND v.status = ? ORDER BY e.seq DESC LIMIT 1",
                (*APPROVING, name, ApprovalStatus.APPROVED.value),
            ).fetchone()
        return self._load(row) if row else None

    # -- pins (registry/pins.py holds the table) -----------------------------------------
    def pin(self, device: str, version_id: str, by: str, reason: str = "") -> Pin:
        name, number = self._parse(version_id)
        with self._write() as conn:
            version = self._fetch(conn, name, number)
            pin = new_pin(device, version, by, reason, self.clock())
            save_pin(conn, pin)
            note = f"{pin.device}: {pin.reason}" if pin.reason else pin.device
            self._event(conn, version, "pin", pin.by, pin.at, note)
        logger.info("pinned %s to %s by %s", pin.device, pin.version, pin.by)
        return pin

    def _unpin(self, device: str, by: str) -> Pin | None:
        with self._write() as conn:
            pin = pop_pin(conn, device)
            if pin is not None:
                version = self._fetch(conn, *self._parse(pin.version))
                self._event(conn, version, "unpin", by, iso(self.clock()), device)
        return pin

    def pins(self) -> builtins.list[Pin]:
        with self._connect() as conn:
            return load_pins(conn)

    def artifact_path(self, version_id: str) -> Path:
        version = self.get(version_id)
        path = Path(version.artifact)
        if not path.is_file():
            raise RegistryError(f"{version.id}: artifact {path} is missing from the registry")
        return path

    def history(self, version_id: str) -> builtins.list[RegistryEvent]:
        name, number = self._parse(version_id)
        with self._connect() as conn:
            self._fetch(conn, name, number)
            rows = conn.execute(
                "SELECT action, actor, at, note FROM events WHERE name = ? AND number = ? "
                "ORDER BY seq",
                (name, number),
            ).fetchall()
        vid = make_id(name, number)
        return [
            RegistryEvent(
                version=vid, action=r["action"], by=r["actor"], at=r["at"], note=r["note"]
            )
            for r in rows
        ]

    def list(self, name: str | None = None) -> builtins.list[ModelVersion]:
        query = "SELECT record FROM versions"
        args: tuple[Any, ...] = ()
        if name is not None:
            query += " WHERE name = ?"
            args = (name,)
        with self._connect() as conn:
            rows = conn.execute(query + " ORDER BY name, number", args).fetchall()
        return [self._load(r) for r in rows]
