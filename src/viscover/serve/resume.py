"""Work a stopped server left undone, found when the server starts: catalogue items not indexed yet (an ingest or
index job killed half-way, or an ingest from the command line) are indexed by a job queued before any request,
and uploads of jobs that never finished are removed. Until those items are indexed, /api/ready says so. A server
of several processes makes that check once, in whichever worker starts first (resume_once)."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from viscover import Engine, ViscoverError
from viscover.serve.hints import detail
from viscover.serve.jobs import JobQueue
from viscover.serve.uploads import remove_stale_uploads

log = logging.getLogger("viscover.serve")


@dataclass
class Unfinished:
    """What the start-up check found to do: `items` not indexed yet, and the job indexing them (None: none was
    queued, the resume_indexing setting being off), which may run in another server process."""

    items: int = 0
    job_id: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reason(self, engine: Engine, jobs: JobQueue) -> str | None:
        """Why the server is not ready, or None once those items are indexed (counted again once the job is over,
        or on every call when there is no job: someone may have run `viscover index`)."""
        with self._lock:
            job = jobs.get(self.job_id) if self.job_id is not None else None
            if self.items and (job is None or job.finished is not None):
                try:
                    self.items = engine.unindexed()
                except ViscoverError:
                    pass  # the index's own error is the reason /api/ready gives next
            if not self.items:
                return None
            if job is not None and job.finished is None:
                return f"{self.items} items are not indexed yet; indexing in progress (job {job.id})"
            failed = f" (indexing them failed: {job.error})" if job is not None and job.error else ""
            return f"{self.items} items are not indexed yet{failed}; run `viscover index` on the server"


def resume(engine: Engine, jobs: JobQueue, started: float | None = None) -> Unfinished:
    """Remove uploads older than `started` (default: now) whose job died, and queue a job indexing the catalogue
    items not indexed yet (unless the resume_indexing setting is off); log what was found."""
    removed = remove_stale_uploads(engine.home.uploads, time.time() if started is None else started)
    if removed:
        log.warning("removed %d upload(s) of jobs that never finished (the server stopped while they ran); their "
                    "items may be partly ingested: send them again", removed)
    try:
        items = engine.unindexed()
    except ViscoverError as e:
        log.warning("cannot check for items left unindexed: %s", detail(e))
        return Unfinished()
    if not items:
        return Unfinished()
    if not engine.settings.resume_indexing:
        log.warning("%d catalogue items are not indexed yet (resume_indexing is off): run `viscover index`", items)
        return Unfinished(items)
    job = jobs.submit("index", lambda job: engine.index(progress=job.progress).to_dict())
    log.warning("%d catalogue items are not indexed yet (a job stopped half-way?): indexing them in job %s", items,
                job.id)
    return Unfinished(items, job.id)


def resume_once(engine: Engine, jobs: JobQueue, run_dir: Path) -> Unfinished:
    """The start-up check of a server of several processes, made once: the first worker to start makes it (under a
    lock in the server's run folder, the others waiting) and leaves what it found there; the other workers, and
    any started later to replace one, read that. The index job runs in the first worker; every worker follows it
    through its record."""
    import fcntl

    found = run_dir / "startup.json"
    with open(run_dir / "startup.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when closed, or when this process dies
        if found.is_file():
            data = json.loads(found.read_text())
            return Unfinished(data["items"], data["job"])
        unfinished = resume(engine, jobs)
        found.write_text(json.dumps({"items": unfinished.items, "job": unfinished.job_id}))
        return unfinished
