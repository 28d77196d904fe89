"""A SQLite table of float32 vectors keyed by (group, image sha256).

One class serves both caches in ``<work>/cache/embeddings.sqlite``: backbone embeddings
(table ``emb``, grouped by backbone + preprocessing key) and a bundle's logits (table
``bundle_logits``, grouped by the bundle's sha256). An image is computed once per group.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CHUNK = 500  # shas per query, under SQLite's bound-parameter limit


class VectorCache:
    """(group, sha256) → float32 vector in ``table`` of a SQLite file (created if missing)."""

    def __init__(self, path: Path, table: str, group_column: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.table, self.group = table, group_column
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {table} ({group_column} TEXT, sha TEXT, vec BLOB, "
            f"PRIMARY KEY ({group_column}, sha))"
        )

    def get_many(self, group: str, shas: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors of ``shas`` in ``group``, by sha (missing ones left out)."""
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(shas), CHUNK):
            chunk = list(shas[i : i + CHUNK])
            q = (
                f"SELECT sha, vec FROM {self.table} "
                f"WHERE {self.group}=? AND sha IN ({','.join('?' * len(chunk))})"
            )
            for sha, vec in self.db.execute(q, [group, *chunk]):
                out[sha] = np.frombuffer(vec, dtype=np.float32)
        return out

    def put_many(self, group: str, items: dict[str, np.ndarray]) -> None:
        """Store ``items`` (sha → vector) in ``group``, in one transaction."""
        with self.db:
            self.db.executemany(
                f"INSERT OR REPLACE INTO {self.table} ({self.group}, sha, vec) VALUES (?, ?, ?)",
                [(group, s, np.asarray(v, np.float32).tobytes()) for s, v in items.items()],
            )

    def count(self, group: str) -> int:
        """How many vectors ``group`` holds."""
        q = f"SELECT COUNT(*) FROM {self.table} WHERE {self.group}=?"
        (n,) = self.db.execute(q, (group,)).fetchone()
        return int(n)

    def close(self) -> None:
        self.db.close()
