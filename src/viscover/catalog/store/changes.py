"""A cheap change counter of the catalogue database, to know when what was read from it may be stale.

SQLite's `PRAGMA data_version`, asked on a connection of its own that never writes, changes whenever any other
connection commits: this process's pooled connections or another process. It costs about 3 µs (no table read),
so a cache can ask it on every request."""

from __future__ import annotations

import sqlite3
import threading
from sqlalchemy.engine import Engine


class ChangeCounter:
    """`PRAGMA data_version` of a SQLite file on a connection of its own (opened on first use, and again after
    `close`: like SQLAlchemy's pool, a closed store may still be read)."""

    def __init__(self, database: str):
        self.database = database
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def __call__(self) -> int:
        with self._lock:
            if self._conn is None:
                self._conn = sqlite3.connect(self.database, check_same_thread=False, isolation_level=None)
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def change_counter(engine: Engine) -> ChangeCounter | None:
    """A counter whose value differs after every commit to the database, or None when the database has no such
    counter (not a SQLite file): then nothing read from it may be kept."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:") or database.startswith("file:"):
        return None
    return ChangeCounter(database)
