"""A cheap change counter of the catalogue database, to know when what was read from it may be stale.

SQLite's `PRAGMA data_version`, asked on a connection of its own that never writes, changes whenever any other
connection commits: this process's pooled connections or another process. It costs about 3 µs (no table read),
so a cache can ask it on every request."""

from __future__ import annotations

import sqlite3
import threading
from typing import Callable

from sqlalchemy.engine import Engine


def change_counter(engine: Engine) -> Callable[[], int] | None:
    """A function returning a number that differs after every commit to the database, or None when the database
    has no such counter (not a SQLite file): then nothing read from it may be kept."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:") or database.startswith("file:"):
        return None
    conn = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
    lock = threading.Lock()

    def version() -> int:
        with lock:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

    version.close = conn.close  # type: ignore[attr-defined]
    return version
