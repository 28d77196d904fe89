"""Device pins in the local registry's SQLite file.

A pinned device gets its own retained ``<prefix>/<device>/deployment`` and ignores fleet
approvals until it is unpinned. The registry keeps one row per pinned device, written in
the same transaction as its audit event (see ``SqliteRegistry.pin``).
"""

from __future__ import annotations

import sqlite3

from whichbin.registry.base import Pin, parse_version_id
from whichbin.registry.base import version_id as make_id

PINS_SCHEMA = """
CREATE TABLE IF NOT EXISTS pins (
    device TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    number INTEGER NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
"""


def save_pin(conn: sqlite3.Connection, pin: Pin) -> None:
    """Store ``pin``, replacing the device's previous one."""
    name, number = parse_version_id(pin.version)
    conn.execute(
        "INSERT OR REPLACE INTO pins (device, name, number, actor, at, reason) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (pin.device, name, number, pin.by, pin.at, pin.reason),
    )


def pop_pin(conn: sqlite3.Connection, device: str) -> Pin | None:
    """Remove and return the device's pin (None when it has none)."""
    row = conn.execute("SELECT * FROM pins WHERE device = ?", (device,)).fetchone()
    if row is None:
        return None
    conn.execute("DELETE FROM pins WHERE device = ?", (device,))
    return _pin(row)


def load_pins(conn: sqlite3.Connection) -> list[Pin]:
    """Every pin, by device name."""
    return [_pin(r) for r in conn.execute("SELECT * FROM pins ORDER BY device").fetchall()]


def _pin(row: sqlite3.Row) -> Pin:
    return Pin(
        device=row["device"],
        version=make_id(row["name"], row["number"]),
        by=row["actor"],
        at=row["at"],
        reason=row["reason"],
    )
