"""Write endpoints (API key required): add items from JSON rows or an uploaded manifest, delete items; both run as
background jobs whose status and progress are at /api/jobs/{id}."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import JSONResponse

from viscover import BadRequestError, Engine, NotFoundError
from viscover.serve import schemas as s
from viscover.serve.hints import http_hint
from viscover.serve.deps import EngineDep, KeyFirstRoute, TooLargeError, WriteAccess
from viscover.serve.jobs import Job
from viscover.serve.jobstore import KEEP
from viscover.serve.uploads import upload_folder

router = APIRouter(prefix="/api", tags=["writes"], route_class=KeyFirstRoute)  # every route here needs the key
MANIFEST_TYPES = (".csv", ".tsv", ".jsonl", ".parquet")


def _submit(request: Request, kind: str, work, upload: Path | None = None) -> JSONResponse:
    """Queue a job and answer 202 with it and where to follow it; its `upload` folder is removed if it cannot be
    queued (its record cannot be written: a full disk)."""
    try:
        job = request.app.state.jobs.submit(kind, work)
    except BaseException:
        if upload is not None:
            shutil.rmtree(upload, ignore_errors=True)
        raise
    return JSONResponse({"job": job.to_dict(), "status_url": f"/api/jobs/{job.id}"}, status_code=202)


def _ingest_job(engine: Engine, manifest: Path):
    """Ingest a manifest, then embed and index what is new: the items are searchable when the job is done."""

    def work(job: Job) -> dict:
        try:
            report = engine.ingest(manifest, progress=job.progress)
            indexed = engine.index(progress=job.progress)
        finally:
            shutil.rmtree(manifest.parent, ignore_errors=True)
        return {"ingest": report.to_dict(hint=http_hint), "index": indexed.to_dict()}

    return work


@router.post("/items", status_code=202, response_model=s.JobAccepted, responses=s.WRITE_ERRORS,
             dependencies=[WriteAccess])
def add_items(body: s.IngestIn, engine: EngineDep, request: Request):
    """Add or update items given as JSON manifest rows; embedding and indexing follow in the same job."""
    with upload_folder(engine.home.uploads, "json") as folder:
        manifest = folder / "items.jsonl"
        manifest.write_text("".join(json.dumps(row) + "\n" for row in body.items))
    return _submit(request, "ingest", _ingest_job(engine, manifest), manifest.parent)


@router.post("/items/manifest", status_code=202, response_model=s.JobAccepted, responses=s.WRITE_ERRORS,
             dependencies=[WriteAccess])
def upload_manifest(engine: EngineDep, request: Request,
                    file: Annotated[UploadFile, File(description="A manifest: .csv, .tsv, .jsonl or .parquet.")]):
    """Add or update items from an uploaded manifest file. Its `path` values must lie under one of the server's
    image_roots (anything else is refused per row); `url` values are downloaded."""
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in MANIFEST_TYPES:
        raise BadRequestError(f"uploaded manifest {file.filename!r}: name it .csv, .tsv, .jsonl or .parquet")
    with upload_folder(engine.home.uploads, "manifest") as folder:
        manifest = _save_upload(file, folder / f"manifest{suffix}", engine.settings.max_manifest_bytes)
    return _submit(request, "ingest", _ingest_job(engine, manifest), manifest.parent)


def _save_upload(file: UploadFile, path: Path, limit: int) -> Path:
    """Stream an upload to `path` (never the whole file in memory); refuse it over `limit` bytes."""
    size = 0
    with open(path, "wb") as out:
        while chunk := file.file.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise TooLargeError(f"uploaded manifest {file.filename!r} is over the limit of {limit:,} bytes "
                                    "(max_manifest_bytes)")
            out.write(chunk)
    return path


def _remove_job(engine: Engine, keys: list[str]):
    def work(job: Job) -> dict:
        job.report(stage="remove", total=len(keys))
        unknown = engine.remove(keys)
        job.report(done=len(keys))
        return {"removed": len(keys) - len(unknown), "unknown": unknown[:1000]}

    return work


@router.post("/items/delete", status_code=202, response_model=s.JobAccepted, responses=s.WRITE_ERRORS,
             dependencies=[WriteAccess])
def delete_items(body: s.DeleteIn, engine: EngineDep, request: Request):
    """Delete items by id, from the catalogue and every index (no rebuild); unknown ids are listed in the result."""
    keys = list(dict.fromkeys(body.ids))
    return _submit(request, "delete", _remove_job(engine, keys))


@router.delete("/items/{item_id:path}", status_code=202, response_model=s.JobAccepted, responses=s.WRITE_ERRORS,
               dependencies=[WriteAccess])
def delete_item(item_id: str, engine: EngineDep, request: Request):
    """Delete one item (404 if unknown)."""
    engine.item(item_id)  # NotFoundError for an unknown id, before queueing anything
    return _submit(request, "delete", _remove_job(engine, [item_id]))


@router.get("/jobs", response_model=s.JobList, responses=s.WRITE_ERRORS, dependencies=[WriteAccess])
def list_jobs(request: Request) -> dict:
    """Recent jobs, newest first."""
    return {"jobs": [j.to_dict() for j in request.app.state.jobs.all()]}


@router.get("/jobs/{job_id}", response_model=s.JobOut, responses=s.WRITE_ERRORS, dependencies=[WriteAccess])
def get_job(job_id: str, request: Request) -> dict:
    """A job's state, stage and progress, and its result once done."""
    job = request.app.state.jobs.get(job_id)
    if job is None:
        raise NotFoundError(f"unknown job {job_id!r} (the newest {KEEP} jobs are kept)")
    return job.to_dict()
