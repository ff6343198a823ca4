"""`viscover serve --workers 2` (issue 13: one process is held by its GIL): two processes answer on one port, and
what one of them does is seen from the other: searches, a job's status, the items a job added, the start-up check
(/api/ready), the metrics. uvicorn replaces a killed worker, and SIGTERM stops them all. Each request here opens
a connection of its own, so the kernel hands it to either worker; the X-Viscover-Worker header names the one
that answered."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import GROCERY, SHARED, grocery_subset, needs_data

KEY = "workers-key"
EXTRA = ["Orange", "Kiwi"]  # products not in the indexed home
WORKER = "x-viscover-worker"


# ---- a server of two processes ----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`viscover serve --workers 2` on `home`; every request on a new connection."""

    def __init__(self, home: Path, log: Path):
        self.home, self.log, port = home, log, _free_port()
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
               "VISCOVER_IMAGE_ROOTS": str(SHARED), "VISCOVER_WORKERS": "1", "VISCOVER_SHARD_SIZE": "8"}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "viscover", "serve", "--home", str(home), "--port",
                                          str(port), "--workers", "2", "--api-key", KEY, "--log-level", "warning"],
                                         stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.base = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 120
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.said()
            try:
                self.get("/api/health")
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"the server did not start: {self.said()}")

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.base + path, headers={"X-API-Key": KEY}, timeout=60, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(self.base + path, headers={"X-API-Key": KEY}, timeout=60, **kwargs)

    def said(self) -> str:
        return self.log.read_text()[-3000:]

    def until_every_worker(self, ask, *, tries: int = 300) -> dict[int, httpx.Response]:
        """Ask (a function of no argument returning a response) until both workers have answered: the last answer
        of each, by pid."""
        answers: dict[int, httpx.Response] = {}
        for _ in range(tries):
            response = ask()
            answers[int(response.headers[WORKER])] = response
            if len(answers) == 2:
                return answers
        raise AssertionError(f"only workers {sorted(answers)} answered {tries} requests")

    def stop(self) -> None:
        """Stop as an operator would (SIGTERM: the run folder is removed), else kill every process."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _descendants(pid: int) -> set[int]:
    """Every process below `pid` (the workers and multiprocessing's resource tracker)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = _parent_of(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    """Running (not gone, nor a zombie waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_job(served: Served, job_id: str, *, seen: dict[int, list[dict]] | None = None) -> dict:
    """Poll a job until it is over; every poll must know it (`seen`: the states each worker answered)."""
    end = time.monotonic() + 120
    while time.monotonic() < end:
        got = served.get(f"/api/jobs/{job_id}")
        assert got.status_code == 200, got.text  # whichever worker answers knows the job
        job = got.json()
        if seen is not None:
            seen.setdefault(int(got.headers[WORKER]), []).append(job)
        if job["finished"] is not None:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not over after 120 s")


@pytest.fixture(scope="module")
def served(indexed_home, tmp_path_factory):
    folder = tmp_path_factory.mktemp("workers")
    home = folder / "home"
    shutil.copytree(indexed_home, home)
    server = Served(home, folder / "server.log")
    yield server
    server.stop()


# ---- what two workers answer ----------------------------------------------------------------------------------
@needs_data
def test_searches_are_answered_by_both_worker_processes(served):
    item = next(r["id"] for r in grocery_subset() if r["split"] == "train")

    def search() -> httpx.Response:
        return served.get("/api/search", params={"item": item, "k": 3})

    with ThreadPoolExecutor(4) as pool:  # side by side, as clients do
        answers = list(pool.map(lambda _: search(), range(40)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200][:3]
    answers_by = served.until_every_worker(search)
    assert all(_parent_of(pid) == served.proc.pid for pid in answers_by), answers_by
    assert len({tuple(h["id"] for h in a.json()["results"]) for a in answers_by.values()}) == 1  # the same answer
    assert {r.json()["ready"] for r in served.until_every_worker(lambda: served.get("/api/ready")).values()} == {True}


@needs_data
def test_an_ingest_job_is_followed_from_every_worker_and_its_items_are_found_by_each(served):
    from viscover.fsutil import HomeLock

    rows = grocery_subset(per_product_train=2, per_product_val=0, products=EXTRA)  # 2 photos + 1 catalogue image
    seen: dict[int, list[dict]] = {}
    with HomeLock(served.home / ".write.lock").held():  # the job waits for it (as for a writer in a shell)...
        accepted = served.post("/api/items", json={"items": rows})
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job"]["id"]
        for _ in range(300):  # ... until both workers have answered a poll while it is not done
            got = served.get(f"/api/jobs/{job_id}")
            assert got.status_code == 200 and got.json()["state"] in ("queued", "running"), got.text
            seen.setdefault(int(got.headers[WORKER]), []).append(got.json())
            if len(seen) == 2:
                break
        assert len(seen) == 2, seen
    done = _wait_job(served, job_id, seen=seen)
    assert done["state"] == "done" and done["result"]["ingest"]["added"] == len(rows), done
    for worker, states in seen.items():
        assert {s["id"] for s in states} == {job_id} and all(s["state"] in ("queued", "running", "done")
                                                              for s in states), (worker, states)
    listed = served.until_every_worker(lambda: served.get("/api/jobs"))
    assert all(job_id in [j["id"] for j in r.json()["jobs"]] for r in listed.values()), listed
    assert all(r.json()["jobs_pending"] == 0 for r in served.until_every_worker(lambda: served.get("/api/ready"))
               .values())
    # the items the job added are found by searches answered by either worker
    photo = next(r for r in rows if r["domain"] == "photo")
    image = Path(photo["path"]).read_bytes()
    found = served.until_every_worker(lambda: served.post("/api/search", params={"k": 1},
                                                          files={"file": ("q.jpg", image)}))
    for worker, response in found.items():
        hits = response.json()["results"]
        assert hits[0]["id"] == photo["id"] and hits[0]["score"] > 0.99, (worker, hits)
    for worker, response in served.until_every_worker(lambda: served.get(f"/api/items/{photo['id']}")).items():
        assert response.status_code == 200, (worker, response.text)


@needs_data
def test_metrics_add_up_the_requests_of_every_worker(served):
    before = _searches(served.get("/metrics").text)
    item = next(r["id"] for r in grocery_subset() if r["split"] == "train")
    answered = served.until_every_worker(lambda: served.get("/api/search", params={"item": item, "k": 2}))
    n = len(answered)
    for _ in range(10):
        n += served.get("/api/search", params={"item": item, "k": 2}).status_code == 200
    scrapes = served.until_every_worker(lambda: served.get("/metrics"))
    for worker, scrape in scrapes.items():  # either worker's scrape counts both workers' searches
        assert _searches(scrape.text) >= before + n, (worker, before, n, scrape.text[:2000])
    assert 'viscover_catalog_size{what="items"}' in scrapes.popitem()[1].text


def _searches(text: str) -> float:
    line = 'viscover_http_requests_total{method="GET",route="/api/search",status="200"} '
    return sum(float(x[len(line):]) for x in text.splitlines() if x.startswith(line))


@needs_data
def test_a_killed_worker_is_replaced_and_its_job_reads_as_failed(served):
    """SIGKILL the worker running an ingest job: uvicorn starts another in its place, and every worker reports
    the job failed, saying that the process running it stopped."""
    from viscover.fsutil import HomeLock

    products = ["Yellow-Onion", "Carrots", "Lemon", "Pineapple"]
    rows = [{"id": f"killed-{i}", "path": r["path"]} for i, r in
            enumerate(r for r in grocery_subset(6, 0, products) if r["split"] == "train")]
    assert len(rows) == 24 and str(GROCERY) in rows[0]["path"]
    with HomeLock(served.home / ".write.lock").held():  # the job runs, waiting for the lock, until it is killed
        accepted = served.post("/api/items", json={"items": rows})
        assert accepted.status_code == 202, accepted.text
        runner, job_id = int(accepted.headers[WORKER]), accepted.json()["job"]["id"]
        end = time.monotonic() + 60
        while (job := served.get(f"/api/jobs/{job_id}").json())["state"] != "running" and time.monotonic() < end:
            time.sleep(0.02)
        assert job["state"] == "running", job
        os.kill(runner, signal.SIGKILL)
    failed = _wait_job(served, job_id)
    assert failed["state"] == "failed" and "the server process running this job stopped" in failed["error"], failed
    assert "send the request again" in failed["error"]
    end = time.monotonic() + 60
    while time.monotonic() < end:  # a new worker in its place
        workers = {int(served.get("/api/health").headers[WORKER]) for _ in range(40)}
        if len(workers) == 2 and runner not in workers:
            break
        time.sleep(0.2)
    assert len(workers) == 2 and runner not in workers and not _alive(runner), workers
    assert all(_parent_of(pid) == served.proc.pid for pid in workers)
    for response in served.until_every_worker(lambda: served.get(f"/api/jobs/{job_id}")).values():
        assert response.json()["state"] == "failed", response.text


@needs_data
def test_sigterm_stops_every_process_and_removes_the_run_folder(served):
    processes = _descendants(served.proc.pid)
    workers = served.until_every_worker(lambda: served.get("/api/health"))
    assert set(workers) <= processes
    run_dirs = {Path(next(v.split("=", 1)[1] for v in Path(f"/proc/{pid}/environ").read_bytes().decode()
                          .split("\0") if v.startswith("PROMETHEUS_MULTIPROC_DIR="))).parent for pid in workers}
    assert len(run_dirs) == 1 and next(iter(run_dirs)).is_dir(), run_dirs
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=30) == 0, served.said()
    end = time.monotonic() + 15
    while any(_alive(pid) for pid in processes) and time.monotonic() < end:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in processes), [pid for pid in processes if _alive(pid)]
    assert not next(iter(run_dirs)).exists()


# ---- the start-up check, made once for every worker -------------------------------------------------------------
@needs_data
def test_every_worker_is_not_ready_while_the_start_up_indexing_runs_then_ready(indexed_home, tmp_path):
    """A home with items not indexed (as a job killed half-way leaves them): the first worker queues one index job,
    and every worker answers /api/ready 503 naming it until it is done, then 200. The job waits meanwhile for the
    home's write lock, held here as a command-line writer would hold it."""
    from viscover import Engine, Settings
    from viscover.fsutil import HomeLock

    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    rows = grocery_subset(per_product_train=2, per_product_val=0, products=EXTRA)
    manifest = tmp_path / "extra.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with Engine(home, Settings(workers=1)) as engine:
        assert engine.ingest(manifest, image_roots=[SHARED]).counts.added == 6
    writer = HomeLock(home / ".write.lock")
    served = None
    try:
        with writer.held():
            served = Served(home, tmp_path / "server.log")
            waiting = served.until_every_worker(lambda: served.get("/api/ready"))
            jobs = {r.json()["reason"] for r in waiting.values()}
            assert all(r.status_code == 503 and r.json()["jobs_pending"] == 1 for r in waiting.values()), waiting
            assert len(jobs) == 1 and next(iter(jobs)).startswith("6 items are not indexed yet; indexing in "
                                                                   "progress (job "), jobs
            listed = served.get("/api/jobs").json()["jobs"]
            assert [j["kind"] for j in listed] == ["index"], listed  # one check, one job, for both workers
        end = time.monotonic() + 120
        while time.monotonic() < end:
            ready = served.until_every_worker(lambda: served.get("/api/ready"))
            if all(r.status_code == 200 for r in ready.values()):
                break
            time.sleep(0.1)
        assert all(r.status_code == 200 and r.json()["indexed"] == r.json()["items"] for r in ready.values()), ready
        assert served.said().count("indexing them in job") == 1, served.said()
    finally:
        if served is not None:
            served.stop()


# ---- job records, without a server ------------------------------------------------------------------------------
def test_a_job_record_of_a_gone_process_reads_as_failed(tmp_path):
    """A record names the process running its job; once that process is gone (or its pid taken by another
    process, started later) the job reads as failed, saying why; a record from another host is taken as it is."""
    from viscover.serve.jobs import Job
    from viscover.serve.jobstore import HOST, STOPPED, JobStore, owner

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store = JobStore(tmp_path / "jobs")
    mine = Job("ingest", store=store)
    mine.save()
    records = {"gone": {"pid": gone.pid, "host": HOST, "pid_started": None},
               "reused": {**owner(), "pid_started": owner()["pid_started"] - 1},  # this pid, started earlier
               "elsewhere": {"pid": gone.pid, "host": HOST + "-other", "pid_started": None}}
    for name, who in records.items():
        job = Job(name)
        store.save({**job.to_dict(), **who, "updated": 123.0})
        records[name] = job.id
    got = {r["kind"]: r for r in store.all()}
    assert got["ingest"]["state"] == "queued" and got["ingest"]["finished"] is None
    for name in ("gone", "reused"):
        assert got[name]["state"] == "failed" and got[name]["error"] == STOPPED and got[name]["finished"] == 123.0
    assert got["elsewhere"]["state"] == "queued"
    assert store.load(records["gone"])["state"] == "failed"
    for bad in ("../jobs", "x" * 16, "", mine.id + "0", mine.id.upper()):  # ids name no other file
        assert store.load(bad) is None


def test_the_newest_job_records_are_kept(tmp_path):
    from viscover.serve.jobs import Job
    from viscover.serve.jobstore import JobStore

    store = JobStore(tmp_path / "jobs", keep=3)
    jobs = [Job("delete", created=float(i), store=store) for i in range(5)]
    for job in jobs:
        job.finished = job.created + 0.5
        job.save()
    running = Job("ingest", created=-1.0, store=store)  # the oldest, but not finished: kept
    running.save()
    store.prune()
    assert [r["id"] for r in store.all()] == [j.id for j in jobs[:1:-1]] + [running.id]


# ---- how a server of several processes is configured --------------------------------------------------------------
def test_the_number_of_workers_and_what_each_is_handed(tmp_path, monkeypatch):
    """0 workers is one per usable core; a negative count is refused in one line; each worker takes its
    configuration (the key among it) out of its environment, so that processes it starts do not inherit it."""
    from typer.testing import CliRunner

    from viscover import Engine, Settings
    from viscover.cli.app import app
    from viscover.serve import ServeOptions
    from viscover.serve.run import worker_count
    from viscover.serve.worker_config import ENV, WorkerConfig, hand_over, take_over

    assert worker_count(0) == len(os.sched_getaffinity(0)) and worker_count(3) == 3
    Engine(tmp_path / "home").close()  # an empty catalogue
    refused = CliRunner().invoke(app, ["serve", "--home", str(tmp_path / "home"), "--workers", "-1"])
    assert refused.exit_code == 1 and "serve_workers (--workers) = -1" in refused.output, refused.output
    environ = {}
    settings = Settings(detector="det.onnx", request_threads=3)
    options = ServeOptions(api_key="secret", cors_origins=("https://shop.example",), workers=2)
    hand_over(WorkerConfig.of(str(tmp_path), "sqlite:///x.db", settings, options, "/run"), environ)
    got = take_over(environ)
    assert ENV not in environ and got.served_settings() == settings and got.serve_options() == options
    assert (got.home, got.db, got.run_dir) == (str(tmp_path), "sqlite:///x.db", "/run")
    with pytest.raises(Exception, match="started by `viscover serve --workers N`"):
        take_over(environ)


def test_a_later_server_removes_the_run_folder_of_a_killed_one(tmp_path, monkeypatch):
    """A parent killed with SIGKILL cannot remove its run folder; the next server removes those of gone parents."""
    import tempfile

    from viscover.serve import workers

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folders = {name: tmp_path / f"{workers.RUN_DIR_PREFIX}{pid}-abc" for name, pid in
               [("gone", gone.pid), ("live", os.getpid()), ("unnamed", "x")]}
    for folder in folders.values():
        (folder / "metrics").mkdir(parents=True)
    workers._remove_stale_run_dirs()
    assert {name for name, folder in folders.items() if folder.exists()} == {"live", "unnamed"}


def test_a_server_process_puts_its_start_up_objects_out_of_the_collectors_sight():
    """settle_heap (called by every server process once its app is built) collects once and freezes what is
    alive, so that full collections scan only what requests keep (at 1M items: 310 -> 200 ms per collection)."""
    code = ("import gc; from viscover.serve.run import settle_heap; before = gc.get_freeze_count(); "
            "settle_heap(); print(before, gc.get_freeze_count(), len(gc.get_objects()))")
    before, frozen, left = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                   check=True).stdout.split())
    assert before == 0 and frozen > 10_000 and left < frozen / 10
