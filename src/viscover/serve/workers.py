"""A server of several processes: a search holds one process's GIL, so one process cannot use more than about one
core. uvicorn's own supervisor binds the port once, starts N worker processes on it and replaces any that dies; each
worker builds its app over its own Engine from the configuration handed over in its environment (worker_config.py).

The parent (this process) owns a run folder for the server's lifetime, removed when it stops: the workers' shared
Prometheus counts (PROMETHEUS_MULTIPROC_DIR) and the start-up check's result (serve/resume.py: made once, by the
first worker). Jobs and the catalogue are shared through the home, as with any two processes on one home.
"""

from __future__ import annotations

import copy
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from viscover import Engine
from viscover.serve.app import ServeOptions, create_app
from viscover.serve.run import limit_threads, settle_heap
from viscover.serve.worker_config import ENV, WorkerConfig, hand_over, take_over

METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
RUN_DIR_PREFIX = "viscover-serve-"  # + the parent's pid: a later server removes the folder if that process is gone
HEALTHCHECK_SECONDS = 30  # a worker not answering uvicorn's ping this long is killed and replaced (a long index
# build may hold the GIL for seconds: uvicorn's default of 5 s could kill a worker mid-job)


def serve_workers(engine: Engine, options: ServeOptions, *, db: str | None, host: str, port: int,
                  log_level: str) -> None:
    """Serve with `options.workers` processes until stopped (SIGINT or SIGTERM stops every one of them)."""
    import uvicorn

    _remove_stale_run_dirs()
    run_dir = Path(tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-"))
    (run_dir / "metrics").mkdir()
    try:
        os.environ[METRICS_ENV] = str(run_dir / "metrics")  # before a worker starts: they inherit it
        hand_over(WorkerConfig.of(str(engine.home.root), db, engine.settings, options, str(run_dir)), os.environ)
        uvicorn.run(f"{__name__}:worker_app", factory=True, workers=options.workers, host=host, port=port,
                    log_level=log_level, log_config=log_config(), timeout_keep_alive=5, limit_concurrency=256,
                    server_header=False, timeout_worker_healthcheck=HEALTHCHECK_SECONDS)
    finally:
        os.environ.pop(ENV, None)
        os.environ.pop(METRICS_ENV, None)
        shutil.rmtree(run_dir, ignore_errors=True)


def _remove_stale_run_dirs() -> None:
    """Remove the run folders of servers whose parent process is gone: one killed (SIGKILL) had no time to."""
    for folder in Path(tempfile.gettempdir()).glob(f"{RUN_DIR_PREFIX}*"):
        pid = folder.name[len(RUN_DIR_PREFIX):].split("-")[0]
        try:
            if not pid.isdigit() or folder.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue  # alive (another user's), or gone meanwhile


def worker_app() -> FastAPI:
    """The app of one worker process (uvicorn's factory, called in the worker)."""
    limit_threads()  # before FAISS and ONNX Runtime load in this process
    config = take_over()
    engine = Engine(Path(config.home), config.served_settings(), db=config.db)
    _stop_with_parent()
    app = create_app(engine, config.serve_options(), run_dir=Path(config.run_dir), on_shutdown=engine.close)
    settle_heap()
    return app


def _stop_with_parent() -> None:
    """Stop this worker (as SIGTERM does: requests in flight are finished) if the parent dies without stopping
    it, e.g. killed with SIGKILL: a worker alone would serve on, unsupervised, holding the port."""
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="viscover-parent-watch", daemon=True).start()


def log_config() -> dict[str, Any]:
    """uvicorn's logging with each line naming its process (the X-Viscover-Worker header of its answers), and
    viscover's own warnings (e.g. the start-up check's) in the same format."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["default"]["fmt"] = "%(levelprefix)s [%(process)d] %(message)s"
    config["formatters"]["access"]["fmt"] = ('%(levelprefix)s [%(process)d] %(client_addr)s - "%(request_line)s" '
                                             '%(status_code)s')
    config["loggers"]["viscover"] = {"handlers": ["default"], "level": "WARNING", "propagate": False}
    return config
