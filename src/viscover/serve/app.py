"""The FastAPI application: routers, error handling, limits, metrics, offline API docs and the web UI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from viscover import (BadImageError, BadManifestError, BadRequestError, ConfigError, DiskFullError, Engine,
                      IndexCorruptError, ModelError, NotFoundError, UnavailableError, ViscoverError)
from viscover.serve import api_read, api_write, media
from viscover.serve.deps import AuthError, BusyError, TooLargeError, operations_thread
from viscover.serve.downloads import DownloadSlots
from viscover.serve.hints import detail
from viscover.serve.hot import HotPaths
from viscover.serve.jobs import JobQueue
from viscover.serve.metrics import Metrics
from viscover.serve.resume import Unfinished, resume, resume_once

log = logging.getLogger("viscover.serve")
STATIC = Path(str(resources.files("viscover.serve") / "static"))

# (status, error code) of each error a request can cause; anything else is a bug (500, logged with its trace)
# except an OSError of a full disk, which is a DiskFullError (507)
STATUS = [(TooLargeError, 413, "too_large"), (BusyError, 503, "busy"), (NotFoundError, 404, "not_found"),
          (BadImageError, 422, "bad_image"), (BadManifestError, 400, "bad_request"),
          (BadRequestError, 400, "bad_request"), (UnavailableError, 503, "unavailable"),
          (IndexCorruptError, 503, "unavailable"), (ModelError, 503, "unavailable"),
          (ConfigError, 503, "unavailable"), (DiskFullError, 507, "insufficient_storage"),
          (ViscoverError, 400, "bad_request")]


@dataclass(frozen=True)
class ServeOptions:
    """How the server was started: its write key (or no_auth), request limits and CORS origins."""

    api_key: str = ""
    no_auth: bool = False
    max_body_bytes: int = 512 * 1024 * 1024
    request_timeout: float = 60.0
    cors_origins: tuple[str, ...] = ()
    request_threads: int = 0  # requests handled at once (FastAPI's thread pool); 0: its default of 40
    url_downloads: int = 4  # image URLs downloaded at once (search by URL); more are refused with 503
    workers: int = 1  # server processes answering on the port; above 1 each answer names its process


def error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "error": code}, status_code=status)


def create_app(engine: Engine, options: ServeOptions, *, run_dir: Path | None = None,
               on_shutdown: Callable[[], None] | None = None) -> FastAPI:
    """One app over one Engine; searches and reads run on FastAPI's thread pool, writes on one job thread.
    `run_dir`: the folder the worker processes of one server share (serve/workers.py), so that the start-up check
    runs once for all of them; `on_shutdown` runs after the app stops (a worker closes its Engine)."""
    if not options.no_auth and not options.api_key:
        raise ConfigError("the server needs an API key for writes (or no_auth for local use)")
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if options.request_threads > 0:  # CPU-bound requests: many more threads than cores only contend
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = options.request_threads
        # before any request: a killed job's work
        app.state.unfinished = (resume(engine, app.state.jobs) if run_dir is None
                                else resume_once(engine, app.state.jobs, run_dir))
        yield
        app.state.jobs.close()  # the job thread ends after the job it is running
        if on_shutdown is not None:
            on_shutdown()

    app = FastAPI(title="viscover", version=_version(), docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Visual discovery over one catalogue: search by image, crop or item; related items; "
                              "objects in scenes; catalogue reads and (with an API key) writes.")
    app.state.engine, app.state.options, app.state.jobs = engine, options, JobQueue(engine.home.jobs)
    app.state.downloads = DownloadSlots(options.url_downloads)
    app.state.unfinished = Unfinished()  # what the start-up check finds (see lifespan)
    app.state.metrics = metrics = Metrics(lambda: _sizes(engine, app.state.jobs))
    _add_error_handlers(app)
    _add_middleware(app, options, metrics)
    app.include_router(api_read.router)
    app.include_router(api_write.router)
    app.include_router(media.router)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus():
        return await operations_thread(metrics.render)

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="viscover API",
                                   swagger_js_url="/static/vendor/swagger-ui-bundle.js",
                                   swagger_css_url="/static/vendor/swagger-ui.css",
                                   swagger_favicon_url="/static/vendor/favicon.png")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static/vendor", StaticFiles(directory=_swagger_dir()), name="vendor")
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ViscoverError)
    async def user_error(request: Request, exc: ViscoverError):
        if isinstance(exc, AuthError):
            return error(exc.status, "unauthorized" if exc.status == 401 else "forbidden", str(exc))
        status, code = next((s, c) for kind, s, c in STATUS if isinstance(exc, kind))  # ViscoverError comes last
        response = error(status, code, detail(exc))
        if isinstance(exc, BusyError):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "request"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(parts), "error": "bad_request",
                             "errors": _plain(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        field = _FIELD_TOO_LARGE.match(str(exc.detail)) if exc.status_code == 400 else None
        if field:  # Starlette's own limit on a form field held in memory: too large, like any other
            return error(413, "too_large", f"a form field over the limit of {int(field[1]) * 1024:,} bytes; send "
                                           "files as file parts (with a filename), e.g. curl -F file=@photo.jpg")
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "bad_request")
        detail = exc.detail if exc.status_code != 404 else f"no such endpoint: {request.url.path} (see /docs)"
        return error(exc.status_code, code, str(detail))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):
        if (full := DiskFullError.from_os_error(exc)) is not None:  # a write of the server's own, e.g. an upload
            log.error("no space left on the disk on %s %s: %s", request.method, request.url.path, exc)
            return await user_error(request, full)
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, "internal", "internal server error; the server log has the details")


# Starlette's 400 for a non-file form field over its max_part_size (1 MiB): "Part exceeded maximum size of 1024KB."
_FIELD_TOO_LARGE = re.compile(r"^(?:Part|Field) exceeded maximum size of (\d+)KB\.$")


def _plain(errors: list[dict]) -> list[dict]:
    """Validation errors as JSON-safe dicts (their `ctx` may hold exceptions, their `input` uploaded bytes)."""
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in errors]


def _add_middleware(app: FastAPI, options: ServeOptions, metrics: Metrics) -> None:
    # innermost: plain "more like this" and related-items reads skip FastAPI's routing and validation (serve/hot.py)
    # but not the limits, metrics and headers around them
    app.add_middleware(HotPaths, fastapi_app=app)

    # added first, so it runs inside LimitsAndMetrics and sees the 413 it raises while the endpoint reads the body
    # first (a task group around it would wrap it in an ExceptionGroup, which FastAPI answers with a 400)
    app.add_middleware(BodyLimit, limit=options.max_body_bytes)

    app.add_middleware(LimitsAndMetrics, options=options, metrics=metrics)

    if options.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(options.cors_origins), allow_methods=["*"],
                           allow_headers=["*"])


class LimitsAndMetrics:
    """Refuse an announced body over the limit (413), answer a request still running after request_timeout with
    503, and count every request in the metrics. Plain ASGI: FastAPI's @app.middleware("http") costs a task and a
    copy of the response stream per request, a third of the server's time on a search by id."""

    def __init__(self, app, options: ServeOptions, metrics: Metrics):
        self.app, self.options, self.metrics = app, options, metrics
        # with several server processes, each answer names the one that made it (X-Viscover-Worker: its pid, as
        # in its log lines): which worker answered a slow or failed request
        self.worker = [(b"x-viscover-worker", str(os.getpid()).encode())] if options.workers > 1 else []

    def _naming(self, send):
        """`send`, adding the worker's header to the response's start when there are several workers."""
        if not self.worker:
            return send

        async def named(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *self.worker]}
            await send(message)

        return named

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        options, status = self.options, 500
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > options.max_body_bytes):
            response = error(413, "too_large", f"request body over the limit of {options.max_body_bytes:,} bytes")
            status = response.status_code
            await response(scope, receive, self._naming(send))
            self.metrics.observe_scope(scope, status, time.perf_counter() - start)
            return
        started, named = False, self._naming(send)

        async def sending(message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await named(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, sending), timeout=options.request_timeout)
        except asyncio.TimeoutError:
            if started:  # too late for another status: the client sees the response cut short
                raise
            response = error(503, "timeout", f"the request took longer than {options.request_timeout:g} s; "
                                             "try a smaller k or image, or retry later")
            status = response.status_code
            await response(scope, receive, self._naming(send))
        finally:
            self.metrics.observe_scope(scope, status, time.perf_counter() - start)


class BodyLimit:
    """Refuse request bodies over `limit` bytes while they stream in (chunked uploads have no Content-Length)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # an HTTPException: FastAPI would turn any other error while reading into a 400
                raise StarletteHTTPException(413, f"request body over the limit of {self.limit:,} bytes")
            return message

        await self.app(scope, limited, send)


def _sizes(engine: Engine, jobs: JobQueue) -> dict[str, float]:
    out = {"items": float(engine.counts()["items"]), "jobs_pending": float(jobs.pending())}
    try:
        out["index_vectors"] = float(len(engine.vector_index()))
    except ViscoverError:
        out["index_vectors"] = 0.0
    return out


def _swagger_dir() -> str:
    """Swagger UI's files from the fastapi-offline package: /docs works without internet."""
    import fastapi_offline

    return str(Path(fastapi_offline.__file__).parent / "static")


def _version() -> str:
    from viscover import __version__

    return __version__
