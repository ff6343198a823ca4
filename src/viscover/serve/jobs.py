"""Background jobs (ingest + index, removals) run one at a time on a worker thread, with status and progress.

Writes are serialised so that two of them never update the same index (the Engine's writes hold the home's write
lock, so jobs of two server processes wait for each other too); searches keep answering meanwhile, since the Engine
swaps in each updated index only once it is saved. Each job's record is kept in the home (serve/jobstore.py), so
that any server process answers a status poll, whichever process runs the job.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from viscover import Advance, DiskFullError, ViscoverError
from viscover.serve.hints import detail, redact_all
from viscover.serve.jobstore import KEEP, JobStore, new_id, owner

log = logging.getLogger("viscover.serve")
SAVE_EVERY = 0.25  # seconds between two saves of a running job's progress
API_FIELDS = ("id", "kind", "state", "stage", "done", "total", "result", "error", "created", "finished")


@dataclass
class Job:
    """One background job and what it has done so far; saved to its record (when it has a store) as it goes."""

    kind: str
    id: str = field(default_factory=new_id)
    state: str = "queued"  # queued -> running -> done | failed
    stage: str = ""
    done: int = 0
    total: int | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    store: JobStore | None = field(default=None, repr=False, compare=False)
    _saved: float = field(default=0.0, repr=False, compare=False)
    _save_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Job":
        """A job as another process's record shows it (read-only here: it has no store)."""
        return cls(**{name: record.get(name) for name in API_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in API_FIELDS}

    def record(self) -> dict[str, Any]:
        """The job's record: its state, the process running it and when it was last saved."""
        return {**self.to_dict(), **owner(), "updated": time.time()}

    def save(self, *, now: bool = True) -> None:
        """Write the record (`now=False`: unless it was written less than SAVE_EVERY ago). A failed write (a full
        disk) is logged, not raised: the job goes on, and this process still answers for it from memory."""
        if self.store is None or (not now and time.monotonic() - self._saved < SAVE_EVERY):
            return
        with self._save_lock:
            self._saved = time.monotonic()
            try:
                self.store.save(self.record())
            except OSError as e:
                log.warning("cannot save the record of job %s: %s", self.id, e)

    def report(self, *, stage: str | None = None, done: int | None = None, total: int | None = None) -> None:
        """Record progress: a new stage is saved at once, a count at most every SAVE_EVERY seconds."""
        if total is not None:
            self.total = total
        if done is not None:
            self.done = done
        if stage is not None and stage != self.stage:
            self.stage = stage
            self.save()
        else:
            self.save(now=False)

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Advance]:
        """A ProgressFactory (see viscover.progress) that records the stage and its count on the job."""
        self.stage, self.done, self.total = description, 0, total
        self.save()

        def advance(n: int) -> None:
            self.done += n
            self.save(now=False)

        yield advance


class JobQueue:
    """A FIFO of jobs run by one daemon thread; `submit` returns at once with the queued job. Reads see the jobs of
    every process on the home (their records), this process's own from memory (the freshest)."""

    def __init__(self, folder: Path) -> None:
        self.store = JobStore(folder)
        self._mine: dict[str, Job] = {}
        self._queue: queue.Queue[tuple[Job, Callable[[Job], dict]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="viscover-jobs", daemon=True)
        self._thread.start()

    def submit(self, kind: str, work: Callable[[Job], dict]) -> Job:
        """Queue a job; its record is written first (an OSError, e.g. a full disk, refuses the job)."""
        job = Job(kind, store=self.store)
        self.store.save(job.record())
        with self._lock:
            self._mine[job.id] = job
            finished = [j for j in self._mine.values() if j.finished is not None]
            for old in sorted(finished, key=lambda j: j.created)[:max(0, len(finished) - KEEP)]:
                del self._mine[old.id]
        try:
            self.store.prune()
        except OSError as e:
            log.warning("cannot remove old job records: %s", e)
        self._queue.put((job, work))
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            mine = self._mine.get(job_id)
        if mine is not None:
            return mine
        record = self.store.load(job_id)
        return None if record is None else Job.from_record(record)

    def all(self) -> list[Job]:
        with self._lock:
            mine = dict(self._mine)
        jobs = {r["id"]: Job.from_record(r) for r in self.store.all() if r["id"] not in mine}
        return sorted([*jobs.values(), *mine.values()], key=lambda j: j.created, reverse=True)[:KEEP]

    def pending(self) -> int:
        """Jobs queued or running, in any process on the home."""
        return sum(j.finished is None for j in self.all())

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while (entry := self._queue.get()) is not None:
            job, work = entry
            job.state = "running"
            job.save()
            try:
                job.result = redact_all(work(job))  # reports name rows' files: never a server path
                job.state = "done"
            except ViscoverError as e:
                job.state, job.error = "failed", detail(e)
            except Exception as e:  # a full disk, else a bug: keep serving, say what happened
                if (full := DiskFullError.from_os_error(e)) is not None:
                    job.state, job.error = "failed", detail(full)
                else:
                    log.error("job %s (%s) failed:\n%s", job.id, job.kind, traceback.format_exc())
                    job.state, job.error = "failed", f"internal error ({type(e).__name__}); see the server log"
            finally:
                job.finished = time.time()
                job.save()
