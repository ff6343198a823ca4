"""Background jobs (ingest + index, removals) run one at a time on a worker thread, with status and progress.

Writes are serialised so that two of them never update the same index; searches keep answering meanwhile,
since the Engine swaps in each updated index only once it is saved.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from viscover import Advance, DiskFullError, ViscoverError
from viscover.serve.hints import detail, redact_all

log = logging.getLogger("viscover.serve")
KEEP = 200  # finished jobs remembered for status queries


@dataclass
class Job:
    """One background job and what it has done so far."""

    kind: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    state: str = "queued"  # queued -> running -> done | failed
    stage: str = ""
    done: int = 0
    total: int | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "state": self.state, "stage": self.stage, "done": self.done,
                "total": self.total, "result": self.result, "error": self.error,
                "created": self.created, "finished": self.finished}

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Advance]:
        """A ProgressFactory (see viscover.progress) that records the stage and its count on the job."""
        self.stage, self.done, self.total = description, 0, total

        def advance(n: int) -> None:
            self.done += n

        yield advance


class JobQueue:
    """A FIFO of jobs run by one daemon thread; `submit` returns at once with the queued job."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._queue: queue.Queue[tuple[Job, Callable[[Job], dict]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="viscover-jobs", daemon=True)
        self._thread.start()

    def submit(self, kind: str, work: Callable[[Job], dict]) -> Job:
        job = Job(kind)
        with self._lock:
            self._jobs[job.id] = job
            finished = [j for j in self._jobs.values() if j.finished is not None]
            for old in sorted(finished, key=lambda j: j.created)[:max(0, len(finished) - KEEP)]:
                del self._jobs[old.id]
        self._queue.put((job, work))
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)

    def pending(self) -> int:
        with self._lock:
            return sum(j.finished is None for j in self._jobs.values())

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while (entry := self._queue.get()) is not None:
            job, work = entry
            job.state = "running"
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
