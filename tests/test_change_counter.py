"""The catalogue's change counter (catalog/store/changes.py): it moves after a commit from any connection, stays
put otherwise, and new threads asking it do not move it once a connection is free for them (a server's thread pool
retires and starts threads all the time; each move empties every cache)."""

from __future__ import annotations

import sqlite3
import threading

from viscover.catalog.store.changes import ChangeCounter


def _db(tmp_path):
    path = str(tmp_path / "c.sqlite")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x INTEGER)")
    return path, conn


def test_it_moves_after_a_commit_elsewhere_and_only_then(tmp_path):
    path, writer = _db(tmp_path)
    counter = ChangeCounter(path)
    first = counter()
    assert counter() == first == counter()
    writer.execute("INSERT INTO t VALUES (1)")
    moved = counter()
    assert moved != first and counter() == moved
    counter.close()
    reopened = counter()  # a closed counter still answers, on a new connection (whose first read moves it)
    assert counter() == reopened
    writer.execute("INSERT INTO t VALUES (2)")
    assert counter() != reopened


def test_new_threads_do_not_move_it(tmp_path):
    path, _ = _db(tmp_path)
    counter = ChangeCounter(path)
    before = counter()
    seen = []
    for _ in range(20):  # one thread after another, as a pool retiring idle threads does
        t = threading.Thread(target=lambda: seen.append(counter()))
        t.start()
        t.join()
    assert seen == [before] * 20


def test_concurrent_callers_see_a_commit(tmp_path):
    path, writer = _db(tmp_path)
    counter = ChangeCounter(path)
    barrier = threading.Barrier(4)
    values: list[int] = []

    def ask():
        barrier.wait()
        values.extend(counter() for _ in range(50))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    settled = counter()
    writer.execute("INSERT INTO t VALUES (1)")
    after = {counter() for _ in range(10)}
    assert settled not in after and len(after) == 1


def test_no_caller_after_a_commit_gets_the_generation_from_before_it(tmp_path):
    """While one caller notices a commit and re-reads the idle connections, another caller may take one of those
    (already re-read) connections: it must not be answered the old generation (it once was, and a search after a
    write showed the old title)."""
    path, writer = _db(tmp_path)
    counter = ChangeCounter(path)
    stale = []
    for n in range(150):
        before = counter()
        writer.execute(f"INSERT INTO t VALUES ({n})")  # committed before anyone asks again
        barrier = threading.Barrier(4)

        def ask(barrier: threading.Barrier, before: int) -> None:
            barrier.wait()
            stale.extend(v for v in (counter() for _ in range(5)) if v == before)

        threads = [threading.Thread(target=ask, args=(barrier, before)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert stale == []
