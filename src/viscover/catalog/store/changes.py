"""A cheap change counter of the catalogue database, to know when what was read from it may be stale.

SQLite's `PRAGMA data_version`, asked on a connection that never writes, changes whenever any other connection
commits: this process's pooled connections or another process. It costs about 3 µs (no table read), so a cache
can ask it on every request."""

from __future__ import annotations

import sqlite3
import threading

from sqlalchemy.engine import Engine


class ChangeCounter:
    """A generation number of a SQLite file that moves after every commit to it, from `PRAGMA data_version` on one
    connection per thread (no lock for threads to queue on: sqlite3 releases the GIL while it reads, and one shared
    connection's lock took 10% of a loaded server's time). Each connection's data_version is its own count, so
    any thread seeing its count move bumps the shared generation; a thread's first read bumps it too (what
    happened before it is unknown). Connections open on first use, and again after `close`: like SQLAlchemy's
    pool, a closed store may still be read."""

    def __init__(self, database: str):
        self.database = database
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []
        self._generation = 0

    def __call__(self) -> int:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.database, check_same_thread=False, isolation_level=None)
            local.conn, local.seen = conn, None
            with self._lock:
                self._open.append(conn)
        seen = conn.execute("PRAGMA data_version").fetchone()[0]
        if seen != local.seen:
            local.seen = seen
            with self._lock:
                self._generation += 1
        return self._generation

    def close(self) -> None:
        """Close every thread's connection (a thread using the counter again opens a new one)."""
        with self._lock:
            conns, self._open = self._open, []
            self._local = threading.local()
        for conn in conns:
            conn.close()


def change_counter(engine: Engine) -> ChangeCounter | None:
    """A counter whose value differs after every commit to the database, or None when the database has no such
    counter (not a SQLite file): then nothing read from it may be kept."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:") or database.startswith("file:"):
        return None
    return ChangeCounter(database)
