"""An on-disk outbox so an edge never loses a message while the broker is unreachable.

``put`` writes the message to a SQLite file (WAL, ``synchronous=FULL``) before it
returns; ``flush`` (or a background :class:`OutboxDrainer`) sends rows in insertion
order with ``publish_confirmed`` and deletes a row only after the broker acknowledged
it. Payloads are stored byte for byte, so ids and timestamps are the original ones and a
consumer can drop the duplicates an at-least-once queue may produce (a row whose PUBACK
was lost is sent again). Rows left in the file when the process stops are sent by the
next process that flushes it; run one flusher per file.

Example::

    outbox = SqliteOutbox("edge-outbox.sqlite")
    drainer = OutboxDrainer(outbox, mqtt_client).start()
    outbox.put("whichbin/bin-1/event", event.to_json())   # or outbox.publish(...)
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: the send order
    topic    TEXT    NOT NULL,
    payload  BLOB    NOT NULL,
    qos      INTEGER NOT NULL,
    retain   INTEGER NOT NULL,
    created  REAL    NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS outbox_dead (
    id       INTEGER PRIMARY KEY,
    topic    TEXT    NOT NULL,
    payload  BLOB    NOT NULL,
    qos      INTEGER NOT NULL,
    retain   INTEGER NOT NULL,
    created  REAL    NOT NULL,
    attempts INTEGER NOT NULL,
    error    TEXT    NOT NULL
);
"""


class ConfirmingPublisher(Protocol):
    """What the outbox sends through (``MqttClient`` is one)."""

    def publish_confirmed(
        self,
        topic: str,
        payload: str | bytes,
        qos: int = 1,
        retain: bool = False,
        timeout: float = 5,
    ) -> bool:
        """True only once the broker acknowledged the message."""
        ...


@dataclass(frozen=True)
class OutboxItem:
    """One stored message."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created: float
    attempts: int


class SqliteOutbox:
    """A persistent FIFO of MQTT messages in one SQLite file. Thread-safe.

    Args:
        path: the SQLite file (created with its parent folder if missing).
        clock: wall clock for the ``created`` column (bookkeeping only).
    """

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._work = threading.Event()
        # autocommit: every statement is its own durable transaction
        self._db = sqlite3.connect(
            self.path, timeout=10, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a put survives power loss
        self._db.executescript(_SCHEMA)
        if self.pending():
            self._work.set()

    # -- writing ------------------------------------------------------------------
    def put(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> int:
        """Store a message durably; returns its row id (the send order)."""
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO outbox (topic, payload, qos, retain, created) VALUES (?, ?, ?, ?, ?)",
                (topic, data, int(qos), int(bool(retain)), self._clock()),
            )
        self._work.set()
        return int(cur.lastrowid or 0)

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> bool:
        """The ``Publisher`` protocol: store for sending; True once it is on disk."""
        self.put(topic, payload, qos, retain)
        return True

    # -- reading ------------------------------------------------------------------
    def pending(self) -> int:
        """How many messages wait to be sent."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    __len__ = pending

    def peek(self, limit: int = 100) -> list[OutboxItem]:
        """The oldest ``limit`` messages, in send order (nothing is removed)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain, created, attempts FROM outbox "
                "ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [OutboxItem(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5], r[6]) for r in rows]

    def dead(self) -> list[tuple[OutboxItem, str]]:
        """Messages the publisher rejected as invalid (kept, never retried), with the error."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain, created, attempts, error "
                "FROM outbox_dead ORDER BY id"
            ).fetchall()
        return [
            (OutboxItem(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5], r[6]), r[7]) for r in rows
        ]

    # -- sending ------------------------------------------------------------------
    def flush(
        self, publisher: ConfirmingPublisher, limit: int | None = None, timeout: float = 5.0
    ) -> int:
        """Send pending messages in order until one fails; returns how many were sent.

        A row is deleted only after ``publish_confirmed`` returned True. The first failure
        stops the flush so later messages never overtake it. A message the publisher
        rejects as malformed (``ValueError``/``TypeError``, e.g. an invalid topic) moves to
        the ``outbox_dead`` table instead of blocking the queue forever.
        """
        sent = 0
        with self._flush_lock:
            while limit is None or sent < limit:
                batch = self.peek(min(100, limit - sent) if limit is not None else 100)
                if not batch:
                    self._work.clear()
                    if self.pending():  # a put raced with the clear
                        self._work.set()
                    break
                for item in batch:
                    try:
                        ok = publisher.publish_confirmed(
                            item.topic, item.payload, item.qos, item.retain, timeout
                        )
                    except (ValueError, TypeError) as e:
                        logger.error(
                            "outbox: message %d to %s rejected: %s", item.id, item.topic, e
                        )
                        self._bury(item, str(e))
                        continue
                    if not ok:
                        self._note_attempt(item.id)
                        return sent
                    with self._lock:
                        self._db.execute("DELETE FROM outbox WHERE id = ?", (item.id,))
                    sent += 1
        return sent

    def wake(self) -> None:
        """Wake whoever waits in ``wait_for_work`` (e.g. to stop a drainer)."""
        self._work.set()

    def wait_for_work(self, timeout: float) -> bool:
        """Block until a message may be pending (or ``timeout``); True if one may be."""
        return self._work.wait(timeout)

    def _note_attempt(self, row_id: int) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (row_id,))

    def _bury(self, item: OutboxItem, error: str) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO outbox_dead "
                    "(id, topic, payload, qos, retain, created, attempts, error) "
                    "SELECT id, topic, payload, qos, retain, created, attempts + 1, ? "
                    "FROM outbox WHERE id = ?",
                    (error, item.id),
                )
                self._db.execute("DELETE FROM outbox WHERE id = ?", (item.id,))
                self._db.execute("COMMIT")
            except Exception:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SqliteOutbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OutboxDrainer:
    """A background thread that flushes an outbox whenever it has work.

    It retries every ``retry_interval`` seconds while sends fail (broker down) and wakes
    at once on ``put``.
    """

    def __init__(
        self,
        outbox: SqliteOutbox,
        publisher: ConfirmingPublisher,
        retry_interval: float = 1.0,
        timeout: float = 5.0,
    ) -> None:
        self.outbox = outbox
        self.publisher = publisher
        self.retry_interval = retry_interval
        self.timeout = timeout
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> OutboxDrainer:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="whichbin-outbox", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the message in flight (rows not sent stay in the file)."""
        self._stop.set()
        self.outbox.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.outbox.wait_for_work(self.retry_interval):
                continue
            if self._stop.is_set():
                break
            try:
                self.sent += self.outbox.flush(self.publisher, timeout=self.timeout)
            except Exception:
                logger.exception("outbox flush failed")
            if self.outbox.pending() and not self._stop.is_set():
                # sending failed (broker down): wait before retrying, not in a hot loop
                self._stop.wait(self.retry_interval)
