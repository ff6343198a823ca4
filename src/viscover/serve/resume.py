"""Work a stopped server left undone, found when the server starts: catalogue items not indexed yet (an ingest or
index job killed half-way, or an ingest from the command line) are indexed by a job queued before any request,
and uploads of jobs that never finished are removed. Until those items are indexed, /api/ready says so."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from viscover import Engine, ViscoverError
from viscover.serve.hints import detail
from viscover.serve.jobs import Job, JobQueue
from viscover.serve.uploads import remove_stale_uploads

log = logging.getLogger("viscover.serve")


@dataclass
class Unfinished:
    """What the start-up check found to do: `items` not indexed yet, and the job indexing them (None: none was
    queued, the resume_indexing setting being off)."""

    items: int = 0
    job: Job | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reason(self, engine: Engine) -> str | None:
        """Why the server is not ready, or None once those items are indexed (counted again once the job is over,
        or on every call when there is no job: someone may have run `viscover index`)."""
        with self._lock:
            if self.items and (self.job is None or self.job.finished is not None):
                try:
                    self.items = engine.unindexed()
                except ViscoverError:
                    pass  # the index's own error is the reason /api/ready gives next
            if not self.items:
                return None
            if self.job is not None and self.job.finished is None:
                return f"{self.items} items are not indexed yet; indexing in progress (job {self.job.id})"
            failed = f" (indexing them failed: {self.job.error})" if self.job is not None and self.job.error else ""
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
    return Unfinished(items, job)
