"""Running the server: thread limits fit for many concurrent requests, then uvicorn in this process, or with
several worker processes (serve/workers.py)."""

from __future__ import annotations

import os
import secrets

from viscover import ConfigError, Engine, Settings
from viscover.serve.app import ServeOptions, create_app


def options_from(settings: Settings, *, api_key: str | None = None, no_auth: bool | None = None,
                 workers: int | None = None) -> ServeOptions:
    """Server options from the settings (and command-line overrides); a missing key is generated."""
    key = api_key or settings.api_key
    open_writes = settings.no_auth if no_auth is None else no_auth
    if not key and not open_writes:
        key = secrets.token_urlsafe(24)
    return ServeOptions(api_key=key or "", no_auth=open_writes,
                        max_body_bytes=max(settings.max_manifest_bytes, settings.max_image_bytes) + (1 << 20),
                        request_timeout=settings.request_timeout,
                        request_threads=settings.request_threads or 2 * (os.cpu_count() or 1),
                        url_downloads=settings.url_downloads,
                        workers=worker_count(settings.serve_workers if workers is None else workers),
                        cors_origins=tuple(o.strip() for o in settings.cors_origins.split(",") if o.strip()))


def worker_count(wanted: int) -> int:
    """Server processes for the serve_workers setting (or --workers): 0 is one per core this process may use."""
    if wanted < 0:
        raise ConfigError(f"serve_workers (--workers) = {wanted}: give the number of server processes, or 0 for "
                          "one per usable core")
    if wanted:
        return wanted
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def serving_settings(settings: Settings) -> Settings:
    """Settings for a server: inference_threads 0 (one per core) becomes one thread per request, since requests
    already run side by side (benchmarks/inference_threads.py: at 2-4 concurrent callers one thread served
    1.2-1.5x the detections and searches by image of one per core on 2 cores); a value set by the user is kept."""
    return settings.replace(inference_threads=1) if settings.inference_threads == 0 else settings


def limit_threads() -> None:
    """One BLAS/OpenMP thread per request thread: requests already run side by side, and a library spawning a
    thread per core inside each of them made filtered searches 10x slower under load (measured for issue 4).

    OpenMP's thread count is per thread, so it must come from the environment before FAISS loads: setting it
    in the main thread alone left every request thread with a spinning OpenMP team (benchmarks/serve_load.py).
    """
    import os
    import sys

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if "faiss" in sys.modules:  # too late for the environment: at least this thread
        sys.modules["faiss"].omp_set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def settle_heap() -> None:
    """Collect once, then put every object alive now (modules, functions, classes: about 200k) out of the
    collector's sight for good: they live as long as the server, and each full collection would scan them again.
    At 1M items a full collection stopped the process for 310 ms with them and 200 ms without (what requests keep
    in caches stays scanned): the tail of p99 on items never seen before."""
    import gc

    gc.collect()
    gc.freeze()


def serve(engine: Engine, options: ServeOptions, *, host: str, port: int, log_level: str = "info",
          db: str | None = None) -> None:
    """Serve until stopped: in this process, or in options.workers processes over the same home (and `db`)."""
    if options.workers > 1:
        from viscover.serve.workers import serve_workers

        serve_workers(engine, options, db=db, host=host, port=port, log_level=log_level)
        return
    import uvicorn

    limit_threads()
    app = create_app(engine, options)
    settle_heap()
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_keep_alive=5,
                limit_concurrency=256, server_header=False)
