"""A cheap change counter of the catalogue database, to know when what was read from it may be stale.

SQLite's `PRAGMA data_version`, asked on a connection that never writes, changes whenever any other connection
commits: this process's pooled connections or another process. It costs about 3 µs (no table read), so a cache
can ask it on every request."""

from __future__ import annotations

import queue
import sqlite3
import threading

from sqlalchemy.engine import Engine


POOL = 8  # connections asking the counter: more callers at once wait a few microseconds for one


class ChangeCounter:
    """A generation number of a SQLite file that moves after every commit to it, from `PRAGMA data_version` on
    connections that never write. Each connection's data_version is its own count, so a connection seeing its
    count move bumps the shared generation. A fixed pool of connections, opened together with their first counts
    read at once, is shared by every thread (a caller borrows one for a few microseconds; sqlite3 releases the GIL
    while it reads). Connections were once kept per thread, and a new connection's first read must move the
    generation (what happened before it is unknown): a server's thread pool retires idle threads and starts new
    ones, so every new thread emptied every cache (at 1M items, related items fell from 1,100 to 27 per second as
    the clients went from 1 to 16). Connections open on first use, and again after `close`: like SQLAlchemy's pool,
    a closed store may still be read."""

    def __init__(self, database: str):
        self.database = database
        self._lock = threading.Lock()
        self._pool: queue.SimpleQueue | None = None  # of [connection, last data_version seen]
        self._open: list[sqlite3.Connection] = []
        self._generation = 0

    def _connections(self) -> queue.SimpleQueue:
        with self._lock:
            if self._pool is None:
                pool: queue.SimpleQueue = queue.SimpleQueue()
                for _ in range(POOL):
                    conn = sqlite3.connect(self.database, check_same_thread=False, isolation_level=None)
                    self._open.append(conn)
                    pool.put([conn, conn.execute("PRAGMA data_version").fetchone()[0]])
                self._generation += 1  # what happened before the pool opened is unknown
                self._pool = pool
            return self._pool

    def __call__(self) -> int:
        pool = self._pool or self._connections()
        entry = pool.get()
        try:
            seen = entry[0].execute("PRAGMA data_version").fetchone()[0]
            if seen != entry[1]:
                self._moved(pool, entry, seen)
            return self._generation
        finally:
            pool.put(entry)

    def _moved(self, pool: queue.SimpleQueue, entry: list, seen: int) -> None:
        """A commit happened: the idle connections read their counts again before the generation moves, so that one
        commit moves it once, not once per connection. They go back to the pool only after the move: a caller
        taking one earlier would see no change and be answered the generation from before the commit (a search
        after a write once showed the old title so). A commit landing meanwhile is in a count read before the move
        (covered by it) or seen later by a connection that read before it (another move)."""
        with self._lock:
            entry[1] = seen
            idle = []
            while True:
                try:
                    idle.append(pool.get_nowait())
                except queue.Empty:
                    break
            for other in idle:
                other[1] = other[0].execute("PRAGMA data_version").fetchone()[0]
            self._generation += 1
            for other in idle:
                pool.put(other)

    def close(self) -> None:
        """Close every connection (the counter opens a new pool when asked again)."""
        with self._lock:
            conns, self._open, self._pool = self._open, [], None
        for conn in conns:
            conn.close()


def change_counter(engine: Engine) -> ChangeCounter | None:
    """A counter whose value differs after every commit to the database, or None when the database has no such
    counter (not a SQLite file): then nothing read from it may be kept."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:") or database.startswith("file:"):
        return None
    return ChangeCounter(database)
