"""Work a killed job leaves undone (issue 12, security 6): after kill -9 mid-ingest, rows stay in the catalogue
without embeddings and the uploaded manifest stays under uploads/. A restarted server says it is not ready and
why, indexes those rows in a job of its own, removes the stale upload, and is ready (the rows searchable) once
that job is done; `viscover info` names the unindexed rows and what to run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from conftest import GROCERY, SHARED, grocery_subset, needs_data, write_csv

pytestmark = needs_data
KEY = "resume-key"
EXTRA = ["Orange", "Kiwi"]  # products not in the indexed home


def _extra_manifest(folder: Path) -> Path:
    rows = grocery_subset(per_product_train=2, per_product_val=0, products=EXTRA)  # 2 photos + 1 catalogue image
    return write_csv(rows, folder / "extra.csv")


def _killed_mid_ingest(indexed_home: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the indexed home in the state a server killed half-way through an ingest job leaves: rows
    committed to the catalogue, not embedded nor indexed, and the job's uploaded manifest under uploads/."""
    from viscover import Engine, Settings

    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    with Engine(home, Settings(workers=1)) as engine:
        assert engine.ingest(_extra_manifest(tmp_path), image_roots=[SHARED]).counts.added == 6
    upload = home / "uploads" / "json-5c0ffee5c0ff"  # as the server names them, from before the restart
    upload.mkdir(parents=True)
    (upload / "items.jsonl").write_text('{"id": "x", "path": "y.jpg"}\n')
    an_hour_ago = time.time() - 3600
    os.utime(upload / "items.jsonl", (an_hour_ago, an_hour_ago))
    os.utime(upload, (an_hour_ago, an_hour_ago))
    return home, upload


def _wait_ready(client, timeout: float = 300) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        response = client.get("/api/ready")
        if response.status_code == 200:
            return response.json()
        time.sleep(0.1)
    raise AssertionError(f"not ready after {timeout} s: {response.text}")


def test_a_restarted_server_indexes_what_a_killed_job_left_and_removes_its_upload(indexed_home, tmp_path):
    from fastapi.testclient import TestClient

    from viscover import Engine, Settings
    from viscover.serve import ServeOptions, create_app

    home, upload = _killed_mid_ingest(indexed_home, tmp_path)
    engine = Engine(home, Settings(workers=1))
    gate = threading.Event()  # holds the resume job until the test has seen the server not ready
    index = engine.index
    engine.index = lambda *args, **kwargs: gate.wait(120) and index(*args, **kwargs)
    try:
        with TestClient(create_app(engine, ServeOptions(api_key=KEY)), raise_server_exceptions=False) as client:
            waiting = client.get("/api/ready")
            assert waiting.status_code == 503, waiting.text
            body = waiting.json()
            assert body["ready"] is False and body["jobs_pending"] == 1, body
            assert body["reason"].startswith("6 items are not indexed yet; indexing in progress"), body
            assert str(home) not in body["reason"]
            assert not upload.exists(), "the upload of the job that never finished is removed"
            jobs = client.get("/api/jobs", headers={"X-API-Key": KEY}).json()["jobs"]
            assert [j["kind"] for j in jobs] == ["index"], jobs
            gate.set()
            ready = _wait_ready(client)
            assert ready["indexed"] == ready["items"] == body["items"], ready
            job = client.get(f"/api/jobs/{jobs[0]['id']}", headers={"X-API-Key": KEY}).json()
            assert job["state"] == "done" and job["result"]["added"] == 6, job
            photo = next(r for r in grocery_subset(2, 0, EXTRA) if r["domain"] == "photo")
            hits = client.post("/api/search", params={"k": 1}, files={"file": ("q.jpg", Path(photo["path"])
                                                                             .read_bytes())}).json()["results"]
            assert hits[0]["id"] == photo["id"] and hits[0]["score"] > 0.99, hits
    finally:
        gate.set()
        engine.close()


def test_a_server_that_does_not_resume_says_what_to_run(indexed_home, tmp_path):
    from fastapi.testclient import TestClient

    from viscover import Engine, Settings
    from viscover.serve import ServeOptions, create_app

    home, upload = _killed_mid_ingest(indexed_home, tmp_path)
    engine = Engine(home, Settings(workers=1, resume_indexing=False))
    with TestClient(create_app(engine, ServeOptions(api_key=KEY)), raise_server_exceptions=False) as client:
        body = client.get("/api/ready").json()
        assert body["ready"] is False and body["jobs_pending"] == 0, body
        assert body["reason"] == "6 items are not indexed yet; run `viscover index` on the server", body
        assert not upload.exists()
        engine.index()  # e.g. `viscover index` from a shell on the server
        assert client.get("/api/ready").status_code == 200
    engine.close()


def test_info_names_unindexed_items_and_what_to_run(indexed_home, tmp_path):
    from viscover.cli.app import app

    home, _ = _killed_mid_ingest(indexed_home, tmp_path)
    runner = CliRunner()
    shown = runner.invoke(app, ["info", "--home", str(home)])
    assert shown.exit_code == 0, shown.output
    assert "6 items not indexed yet: run `viscover index`" in shown.stdout, shown.stdout
    data = json.loads(runner.invoke(app, ["info", "--json", "--home", str(home)]).stdout)
    assert data["models"]["efficientnet-lite0"]["unindexed"] == 6
    new = tmp_path / "new"
    assert runner.invoke(app, ["ingest", str(_extra_manifest(tmp_path)), "--image-root", str(SHARED), "--home",
                               str(new)]).exit_code == 0
    assert "6 items not indexed yet: run `viscover index`" in runner.invoke(app, ["info", "--home", str(new)]).stdout


def test_only_uploads_of_gone_servers_are_removed(tmp_path):
    """Upload folders are named after their server process: a live one's (another server on the same home) is
    kept, a dead one's removed, and so is one with this process's pid made before this process started (a killed
    predecessor that had the same pid, as a server in a container often has)."""
    from fastapi.testclient import TestClient

    from viscover import Engine, Settings
    from viscover.serve import ServeOptions, create_app

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    uploads = tmp_path / "home" / "uploads"
    folders = {name: uploads / f"json-{pid}-0123456789ab" for name, pid in
               [("live", os.getppid()), ("gone", gone.pid), ("predecessor", os.getpid())]}
    long_ago = time.time() - 24 * 3600
    for folder in folders.values():
        folder.mkdir(parents=True)
        os.utime(folder, (long_ago, long_ago))
    engine = Engine(tmp_path / "home", Settings(workers=1))
    with TestClient(create_app(engine, ServeOptions(api_key=KEY))):
        assert {name for name, folder in folders.items() if folder.exists()} == {"live"}
    engine.close()


# ---- a real kill -9 of `viscover serve` mid-ingest ------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(home: Path, log: Path) -> tuple[subprocess.Popen, httpx.Client]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
           "VISCOVER_IMAGE_ROOTS": str(SHARED), "VISCOVER_WORKERS": "1", "VISCOVER_SHARD_SIZE": "8"}
    env.setdefault("VISCOVER_CACHE", str(Path(__file__).resolve().parents[1] / ".cache"))
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "viscover", "serve", "--home", str(home), "--port", str(port),
                                 "--api-key", KEY, "--log-level", "warning"], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"X-API-Key": KEY})
    end = time.monotonic() + 120
    while time.monotonic() < end:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            client.get("/api/health")
            return proc, client
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"the server did not start: {log.read_text()[-3000:]}")


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_kill_9_mid_ingest_then_restart(indexed_home, tmp_path):
    """SIGKILL `viscover serve` while its ingest job embeds; the restarted server finishes the work."""
    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    rows = [{"id": f"killed-{i}", "path": r["path"]} for i, r in
            enumerate(r for r in grocery_subset(6, 0, EXTRA + ["Yellow-Onion", "Carrots"]) if r["split"] == "train")]
    assert len(rows) == 24 and all(Path(r["path"]).is_file() for r in rows) and str(GROCERY) in rows[0]["path"]
    log = tmp_path / "server.log"
    proc, client = _serve(home, log)
    try:
        job = client.post("/api/items", json={"items": rows}).json()["job"]
        end = time.monotonic() + 120
        while (state := client.get(f"/api/jobs/{job['id']}").json())["stage"] != "embed" and time.monotonic() < end:
            assert state["state"] in ("queued", "running"), state
            time.sleep(0.01)
        _kill(proc)
        assert any((home / "uploads").iterdir()), "the killed job's upload is left behind"
        proc, client = _serve(home, log)
        waiting = client.get("/api/ready")
        if waiting.status_code == 503:  # unless the resume job was already done
            assert "items are not indexed yet; indexing in progress" in waiting.json()["reason"], waiting.text
        end = time.monotonic() + 300
        while (ready := client.get("/api/ready")).status_code != 200 and time.monotonic() < end:
            time.sleep(0.2)
        assert ready.status_code == 200, ready.text
        assert ready.json()["indexed"] == ready.json()["items"]
        assert not any((home / "uploads").iterdir())
        said = log.read_text()
        assert "removed 1 upload(s) of jobs that never finished" in said and "indexing them in job" in said, said
        for row in rows:
            assert client.get("/api/search", params={"item": row["id"], "k": 1}).status_code == 200, row
    finally:
        if proc.poll() is None:
            _kill(proc)
