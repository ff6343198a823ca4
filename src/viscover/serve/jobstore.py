"""Job records on disk (`<home>/jobs/<id>.json`, one file per job, replaced atomically), so that every server
process on a home sees every job: a status poll may land on another worker than the one running the job.

A record names the process running its job (pid, host and the process's start time, so that a recycled pid is not
taken for it); a job not finished whose process is gone reads as failed, saying so. Only the newest KEEP are kept.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

KEEP = 200  # newest job records kept (finished or not)
_ID = re.compile(r"[0-9a-f]{16}")
HOST = socket.gethostname()
STOPPED = ("the server process running this job stopped before it finished (it was killed or the server was "
           "restarted); what it did so far is kept: send the request again")


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def valid_id(job_id: str) -> bool:
    """Whether `job_id` can name a job (and so a file under jobs/: never a path of another kind)."""
    return _ID.fullmatch(job_id) is not None


def owner() -> dict[str, Any]:
    """What a record says about the process running its job: pid, host and the process's start time."""
    return {"pid": os.getpid(), "host": HOST, "pid_started": _started(os.getpid())}


@lru_cache(maxsize=1)
def _own_start(pid: int) -> int | None:
    return _read_start(pid)


def _started(pid: int) -> int | None:
    return _own_start(pid) if pid == os.getpid() else _read_start(pid)


def _read_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux /proc), None where that is unknown."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def owner_alive(record: dict[str, Any]) -> bool:
    """Whether the process a record names may still be running its job (one on another host: assumed so)."""
    if record.get("host") != HOST:
        return True  # no way to tell from here
    pid = record.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    started = record.get("pid_started")
    return started is None or _started(pid) in (None, started)  # another start time: the pid was reused


class JobStore:
    """The job records of one home: written by the process running each job, read by every process."""

    def __init__(self, folder: Path, keep: int = KEEP):
        self.folder, self.keep = Path(folder), keep

    def save(self, record: dict[str, Any]) -> None:
        """Write one record atomically (a temp file renamed over it: readers see the old or the new one). No fsync:
        a status lost in a power cut is not worth a disk flush per progress update."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{record['id']}.json"
        tmp = self.folder / f".{record['id']}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            tmp.write_bytes(json.dumps(record).encode())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def load(self, job_id: str) -> dict[str, Any] | None:
        """The record of a job as it stands (a dead process's unfinished job: failed), None if unknown."""
        if not valid_id(job_id):
            return None
        return self._read(self.folder / f"{job_id}.json")

    def all(self) -> list[dict[str, Any]]:
        """Every kept record, newest first."""
        records = [r for path in self._paths() if (r := self._read(path)) is not None]
        return sorted(records, key=lambda r: r.get("created", 0.0), reverse=True)

    def prune(self) -> None:
        """Remove the oldest records beyond `keep`; unfinished jobs of live processes are never removed."""
        records = self.all()
        for record in records[self.keep:]:
            if record.get("finished") is not None:
                (self.folder / f"{record['id']}.json").unlink(missing_ok=True)

    def _paths(self) -> list[Path]:
        try:
            return [p for p in self.folder.iterdir() if p.suffix == ".json" and valid_id(p.stem)]
        except FileNotFoundError:
            return []

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            record = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None  # removed meanwhile, or cut short by a crash of the machine: as good as gone
        if not isinstance(record, dict) or "id" not in record:
            return None
        if record.get("finished") is None and not owner_alive(record):
            record.update(state="failed", error=STOPPED, finished=record.get("updated") or time.time())
        return record
