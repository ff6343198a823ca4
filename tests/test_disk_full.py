"""A full disk (issue 12, security 5): writes that fail with ENOSPC or EDQUOT, and SQLite's "database or disk is
full" or "disk I/O error" on a disk without space. Nothing is lost; the CLI says "no space left" in one line that
names the home, the API answers 507 `insufficient_storage` without a server path, and a job says why it failed.

The disk is filled by fault injection at the OS boundary (every write-mode `open` under a folder fails with the
errno a full disk gives; SQLite's connection fails as it does when it cannot grow its shared-memory file), so the
tests run anywhere; where tmpfs can be mounted (root with CAP_SYS_ADMIN, as in CI), one test fills a real one."""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SHARED, needs_data
from viscover.cli.app import app

pytestmark = needs_data
runner = CliRunner()
KEY = "disk-key"
Usage = namedtuple("Usage", "total used free")


def fill_disk(monkeypatch, under: Path, code: int = errno.ENOSPC) -> None:
    """Every file opened for writing under `under` fails as on a full disk (or a used-up quota, EDQUOT)."""
    real = builtins.open
    under = under.resolve()

    def refuse(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+"):
            path = Path(file).resolve()
            if path == under or under in path.parents:
                raise OSError(code, os.strerror(code), str(file))
        return real(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)


def sqlite_io_error(monkeypatch, free: int) -> None:
    """SQLite fails to open the catalogue with "disk I/O error" (as when it cannot create its shared-memory file on
    a full disk), and the disk reports `free` bytes available."""
    def connect(*args, **kwargs):
        error = sqlite3.OperationalError("disk I/O error")
        error.sqlite_errorcode, error.sqlite_errorname = 4874, "SQLITE_IOERR_SHMSIZE"
        raise error

    monkeypatch.setattr(sqlite3, "connect", connect)
    monkeypatch.setattr(sqlite3.dbapi2, "connect", connect)  # what SQLAlchemy calls
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(1 << 30, (1 << 30) - free, free))


def one_line_error(result, *words: str) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an uncaught OSError
    text = result.output.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    for word in words:
        assert word in text, text
    return text


@pytest.fixture()
def ingested(tmp_path, grocery_manifest) -> Path:
    """A home with the grocery subset ingested, not indexed yet."""
    home = tmp_path / "home"
    result = runner.invoke(app, ["ingest", str(grocery_manifest), "--image-root", str(SHARED), "--home", str(home)])
    assert result.exit_code == 0, result.output
    return home


def test_cli_index_on_a_full_disk_says_so_in_one_line_and_loses_nothing(ingested, monkeypatch):
    with monkeypatch.context() as m:
        fill_disk(m, ingested)
        result = runner.invoke(app, ["index", "--home", str(ingested), "--workers", "1"])
    one_line_error(result, "no space left", str(ingested))
    result = runner.invoke(app, ["index", "--home", str(ingested), "--workers", "1", "--json"])  # space again
    assert result.exit_code == 0, result.output
    assert '"size": 35' in result.stdout


def test_cli_quota_exceeded_is_named_too(ingested, monkeypatch):
    fill_disk(monkeypatch, ingested, errno.EDQUOT)
    one_line_error(runner.invoke(app, ["index", "--home", str(ingested), "--workers", "1"]), "quota",
                   str(ingested))


def test_cli_ingest_on_a_full_disk_says_so_in_one_line_and_loses_nothing(tmp_path, grocery_manifest):
    """SQLite cannot grow the catalogue (SQLITE_FULL, "database or disk is full"): one line, exit 1, and the items
    ingested before are all there; with space again the ingest completes."""
    from conftest import grocery_subset, write_csv

    home = tmp_path / "home"
    first = write_csv(grocery_subset(1, 0, ["Banana"]), tmp_path / "first.csv")
    assert runner.invoke(app, ["ingest", str(first), "--image-root", str(SHARED), "--home", str(home)]).exit_code == 0
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    def no_growth(dbapi_connection, _record):
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(Pool, "connect", no_growth)
    try:
        result = runner.invoke(app, ["ingest", str(grocery_manifest), "--image-root", str(SHARED), "--home",
                                     str(home)])
    finally:
        event.remove(Pool, "connect", no_growth)
    one_line_error(result, "no space left", str(home))
    info = runner.invoke(app, ["info", "--json", "--home", str(home)])
    assert '"items": 2' in info.stdout, info.output  # the banana photo and catalogue image ingested before
    again = runner.invoke(app, ["ingest", str(grocery_manifest), "--image-root", str(SHARED), "--home", str(home)])
    assert again.exit_code == 0 and "33 added" in again.stdout, again.output


def test_cli_writes_outside_the_home_on_a_full_disk(tmp_path, monkeypatch):
    """The CLI's own files (here a dataset manifest) on a full disk: one line naming the file."""
    out = tmp_path / "full" / "grocery.csv"
    out.parent.mkdir()
    fill_disk(monkeypatch, out.parent)
    one_line_error(runner.invoke(app, ["datasets", "grocery", str(SHARED / "grocery"), str(out)]), "no space left",
                   str(out))


@pytest.mark.parametrize("command", [["info"], ["search", "--item", "x"]])
def test_cli_reads_when_sqlite_says_disk_io_error_on_a_full_disk(ingested, monkeypatch, command):
    sqlite_io_error(monkeypatch, free=0)
    one_line_error(runner.invoke(app, [*command, "--home", str(ingested)]), "no space left", str(ingested))


def test_a_disk_io_error_with_space_left_is_not_called_a_full_disk(ingested, monkeypatch):
    sqlite_io_error(monkeypatch, free=50 << 30)
    text = one_line_error(runner.invoke(app, ["info", "--home", str(ingested)]), "disk I/O error")
    assert "no space" not in text


# ---- the HTTP API ---------------------------------------------------------------------------------------------
@pytest.fixture()
def served(indexed_home, tmp_path):
    from fastapi.testclient import TestClient

    from viscover import Engine, Settings
    from viscover.serve import ServeOptions, create_app

    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    engine = Engine(home, Settings(workers=1, image_roots=str(SHARED)))
    with TestClient(create_app(engine, ServeOptions(api_key=KEY)), raise_server_exceptions=False) as client:
        yield client, engine
    engine.close()


def insufficient_storage(response, home: Path) -> str:
    assert response.status_code == 507, response.text
    body = response.json()
    assert body["error"] == "insufficient_storage", body
    assert "no space left on the disk; the server's operator must free some space" in body["detail"], body
    assert str(home) not in body["detail"], body  # never a server path
    return body["detail"]


def test_http_writes_on_a_full_disk_answer_507(served, monkeypatch):
    client, engine = served
    fill_disk(monkeypatch, engine.home.root)
    row = {"id": "new", "path": str(next((SHARED / "grocery" / "val").rglob("*.jpg")))}
    insufficient_storage(client.post("/api/items", json={"items": [row]}, headers={"X-API-Key": KEY}),
                         engine.home.root)
    insufficient_storage(client.post("/api/items/manifest", files={"file": ("m.csv", b"id,path\na,b.jpg\n")},
                                     headers={"X-API-Key": KEY}), engine.home.root)
    assert not any(engine.home.uploads.iterdir()), "a refused upload leaves nothing behind"


def test_thumbnails_on_a_full_disk_answer_507(served, monkeypatch):
    client, engine = served
    sha = client.get("/api/items", params={"limit": 1}).json()["items"][0]["sha256"]
    fill_disk(monkeypatch, engine.home.thumbnails.parent)
    insufficient_storage(client.get(f"/thumbs/{sha}", params={"size": 160}), engine.home.root)
    assert client.get(f"/images/{sha}").status_code == 200  # reads still work


def test_a_job_that_fills_the_disk_fails_saying_so(served, monkeypatch):
    client, engine = served
    fill_disk(monkeypatch, engine.home.embeddings_root)  # the upload is saved; embedding it fails
    photo = sorted((SHARED / "grocery" / "val" / "Fruit" / "Kiwi").glob("*.jpg"))[0]
    accepted = client.post("/api/items", json={"items": [{"id": "kiwi", "path": str(photo)}]},
                           headers={"X-API-Key": KEY})
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 120
    while (job := client.get(accepted.json()["status_url"], headers={"X-API-Key": KEY}).json())["state"] not in (
            "done", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job["state"] == "failed", job
    assert "no space left on the disk; the server's operator" in job["error"], job
    assert str(engine.home.root) not in job["error"], job
    assert client.get("/api/items/kiwi").status_code == 200  # what was committed is kept


def test_reads_when_sqlite_says_disk_io_error_answer_507(served, monkeypatch):
    client, engine = served
    engine.store.engine.dispose()  # the next request opens a new connection
    sqlite_io_error(monkeypatch, free=0)
    insufficient_storage(client.get("/api/items"), engine.home.root)


# ---- a real full disk -----------------------------------------------------------------------------------------
@pytest.fixture()
def tiny_disk(tmp_path):
    """A 1 MB tmpfs (needs root with the right to mount, as in CI)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _viscover(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.setdefault("VISCOVER_CACHE", str(Path(__file__).resolve().parents[1] / ".cache"))
    return subprocess.run([sys.executable, "-m", "viscover", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def _fill(folder: Path, leave: int) -> Path:
    """Fill the file system of `folder` up to `leave` free bytes."""
    filler = folder / f"filler-{time.monotonic_ns()}"
    free = shutil.disk_usage(folder).free
    with open(filler, "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave))
        except OSError:
            pass
    return filler


def test_a_real_full_disk(tiny_disk, grocery_manifest):
    home = tiny_disk / "home"
    run = _viscover("ingest", str(grocery_manifest), "--image-root", str(SHARED), "--home", str(home))
    assert run.returncode == 0, run.stderr
    fillers = [_fill(tiny_disk, 100_000)]  # room for SQLite's files, not for the embeddings
    run = _viscover("index", "--workers", "1", "--home", str(home))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "no space left" in run.stderr and str(home) in run.stderr and len(run.stderr.strip().splitlines()) == 1
    fillers.append(_fill(tiny_disk, 0))  # not even room for SQLite's shared memory: it says "disk I/O error"
    run = _viscover("info", "--home", str(home))
    assert run.returncode == 1 and "no space left" in run.stderr and "Traceback" not in run.stderr, run.stderr
    for filler in fillers:
        filler.unlink()
    run = _viscover("index", "--workers", "1", "--json", "--home", str(home))
    assert run.returncode == 0 and '"size": 35' in run.stdout, run.stderr


def test_numpys_short_write_on_a_nearly_full_disk_is_a_full_disk(tmp_path, monkeypatch):
    """np.save writes array data with tofile, which reports a full disk as "44800 requested and 15328 written"
    with no errno: the real-disk test met it once embeddings became .npy shards (a traceback, not one line)."""
    from viscover import DiskFullError, diskspace

    short = OSError("44800 requested and 15328 written")
    monkeypatch.setattr(diskspace, "low_space", lambda where: True)
    assert isinstance(diskspace.disk_full(short, tmp_path), DiskFullError)
    monkeypatch.setattr(diskspace, "low_space", lambda where: False)
    assert diskspace.disk_full(short, tmp_path) is None  # space left: some other failure, kept as it is
