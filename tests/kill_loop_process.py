"""The kill loop's process control: run a `viscover` command in a session of its own, SIGKILL it after a delay or as a
trigger fires (a transaction reaching SQLite's write-ahead log, the temp file of an atomic write appearing), and
notice worker processes that outlive it. Used by tests/kill_loop.py and tests/test_crash_safety.py."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from conftest import SHARED as DATA

REPO = Path(__file__).resolve().parents[1]
ORPHAN_GRACE = 3.0  # seconds a killed command's worker processes get to notice and exit
COMMAND_TIMEOUT = 300.0  # a command not killed must finish within this many seconds


@dataclass
class Run:
    rc: int | None
    seconds: float
    killed: bool = False
    open_files: list[str] = field(default_factory=list)
    orphans: int = 0
    store_opened: float | None = None  # seconds after start when the store was first seen open
    stdout: str = ""
    stderr: str = ""


def session_pids(sid: int) -> list[int]:
    """Live processes of session `sid` (each command runs in a new session of its own)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(name))
    return out


def _open_files(pid: int) -> list[str]:
    out = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def command_env(settings: dict, data: Path = DATA) -> dict[str, str]:
    """The environment of the commands: these settings, the model cache, and `data` allowed as an image root."""
    env = dict(os.environ)
    env.setdefault("VISCOVER_CACHE", str(REPO / ".cache"))
    env["VISCOVER_IMAGE_ROOTS"] = str(data)  # the manifests (in a temp folder) point into the shared data
    env.update({f"VISCOVER_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_command(args: list[str], home: Path, env: dict[str, str], kill_after: float | None = None,
                kill_when: Callable[[], bool] | None = None) -> Run:
    """Run `python -m viscover ARGS --home HOME`. SIGKILL its main process after `kill_after` seconds, or as soon
    as `kill_when()` is true (polled every millisecond), if it is still running; then give its worker processes
    ORPHAN_GRACE seconds to exit, and count (and kill) those that do not. Also notes when it opened the store."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "viscover", *args, "--home", str(home)], stdout=out,
                                stderr=err, env=env, cwd=home.parent, start_new_session=True)
        run = Run(rc=None, seconds=0.0)
        while True:
            rc = proc.poll()
            now = time.perf_counter() - start
            if rc is not None:
                run.rc = rc
                break
            if run.store_opened is None and any(f.endswith("catalog.sqlite") for f in _open_files(proc.pid)):
                run.store_opened = now
            due = (kill_after is not None and now >= kill_after) or (kill_when is not None and kill_when())
            if due or now > COMMAND_TIMEOUT:
                run.open_files = _open_files(proc.pid)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                run.killed = due
                break
            time.sleep(0.001 if kill_when is not None else 0.01)
        run.seconds = time.perf_counter() - start
        deadline = time.monotonic() + (ORPHAN_GRACE if run.killed else 10.0)
        while session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = session_pids(proc.pid)
        run.orphans = len(left)
        for pid in left:  # processes this harness started; leave nothing behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        out.seek(0)
        err.seek(0)
        run.stdout, run.stderr = out.read(), err.read()
    return run


def wal_trigger(home: Path, nth: int) -> Callable[[], bool]:
    """True once the store's write-ahead log has changed n times. SQLite writes the log's header as the first
    write transaction begins and appends a transaction's pages as it commits, so n = 1 lands inside the first
    transaction, n = 2 just as (or after) it commits, and so on."""
    wal = home / "catalog.sqlite-wal"

    def signature() -> tuple[int, int] | None:
        try:
            st = wal.stat()
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns) if st.st_size else None  # opening the store creates an empty log

    last, changes = [signature()], [0]

    def fired() -> bool:
        now = signature()
        if now is not None and now != last[0]:
            changes[0] += 1
            last[0] = now
        return changes[0] >= nth

    return fired


def temp_file_trigger(folders: list[Path], nth: int) -> Callable[[], bool]:
    """True once the nth new temp file of an atomic write has appeared in `folders` (the kill then lands inside
    that write: while it is written, fsynced or renamed)."""
    old = {f"{d}/{n}" for d in folders if d.is_dir() for n in os.listdir(d)}
    seen: set[str] = set()

    def fired() -> bool:
        for d in folders:
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            seen.update(f"{d}/{n}" for n in names if n.startswith(".") and n.endswith(".tmp")
                        and f"{d}/{n}" not in old)
        return len(seen) >= nth

    return fired



def sqlite_kill_mid_transaction(folder: Path, rows: int = 200_000) -> dict:
    """SIGKILL a process inside a large uncommitted transaction on a WAL-mode catalogue (synchronous=NORMAL, as
    the store opens it), after one committed transaction; report what survived."""
    db = folder / "catalog.sqlite"
    code = f"""
import sys, time
from viscover.catalog.store import CatalogStore
from sqlalchemy import text
store = CatalogStore("sqlite:///{db}")
with store.engine.begin() as conn:
    conn.execute(text("CREATE TABLE IF NOT EXISTS t (i INTEGER PRIMARY KEY, v TEXT)"))
    conn.execute(text("INSERT INTO t (v) VALUES ('committed')"))
with store.engine.begin() as conn:
    for start in range(0, {rows}, 10000):
        conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{{"v": "x" * 100}}] * 10000)
    print("in transaction", flush=True)
    time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            start_new_session=True, env=command_env({}))
    line = proc.stdout.readline()
    wal = (folder / "catalog.sqlite-wal").stat().st_size if (folder / "catalog.sqlite-wal").exists() else 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    con = sqlite3.connect(db)
    try:
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        values = [v for (v,) in con.execute("SELECT v FROM t")]
    finally:
        con.close()
    from viscover.catalog.store import CatalogStore

    store = CatalogStore(f"sqlite:///{db}")  # opens like every command does
    store.close()
    return {"reached_transaction": line.strip() == "in transaction", "wal_bytes_at_kill": wal,
            "integrity": integrity, "committed_rows": values.count("committed"),
            "uncommitted_rows": len(values) - values.count("committed")}

