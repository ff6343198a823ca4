"""Crash safety under SIGKILL, through the `viscover` command on real images: a bounded run of the kill loop
(tests/kill_loop.py), and focused checks of what it found (workers outliving a killed `index`, a killed
`remove` leaving vectors of deleted items) and of SQLite surviving a kill inside a transaction."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kill_loop
from conftest import GROCERY, SHARED, needs_data

pytestmark = needs_data


@pytest.mark.slow
def test_kill_loop_loses_nothing_and_stays_consistent(tmp_path):
    """About ten SIGKILLs spread over ingest, embedding, shard writes, index saves, removals and rebuilds: after
    each, nothing committed is lost; after each resume, the store and index agree and every item is findable."""
    cfg = kill_loop.KillLoopConfig(kills=10, max_seconds=60, images=100, seed=7, work=tmp_path, data=SHARED)
    result = kill_loop.run_kill_loop(cfg)
    assert result["kills"] >= 4, result  # the time bound may cut a slow machine short, never to nothing
    assert result["lost"] == 0, result["problems"]
    assert result["inconsistent"] == 0, result["problems"]
    assert result["orphan_processes"] == 0
    assert result["items_verified_searchable"] > 0
    assert len(result["kills_by_phase"]) >= 3, result["kills_by_phase"]


def _home_with_unembedded_images(tmp_path: Path, n: int) -> tuple[Path, dict]:
    """A home with n real grocery photos ingested (through the CLI) and not yet embedded."""
    from viscover.datasets import grocery_rows, write_manifest

    rows = [r for r in grocery_rows(GROCERY) if r["split"] == "train"][::20][:n]
    manifest = tmp_path / "photos.csv"
    write_manifest(rows, manifest)
    home = tmp_path / "home"
    home.mkdir()
    env = kill_loop.command_env({"workers": 2}, SHARED)
    run = kill_loop.run_command(["ingest", str(manifest)], home, env)
    assert run.rc == 0, run.stderr
    return home, env


def test_embedding_workers_exit_when_index_is_killed(tmp_path):
    """SIGKILL `index` while its worker processes embed: the workers notice and exit (they used to idle forever,
    each holding a model in memory)."""
    home, env = _home_with_unembedded_images(tmp_path, 80)  # > 2 batches of 32: worker processes are used
    proc = subprocess.Popen([sys.executable, "-m", "viscover", "index", "--workers", "2", "--home", str(home)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(kill_loop.session_pids(proc.pid)) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "index finished before its workers were seen"
        workers = [p for p in kill_loop.session_pids(proc.pid) if p != proc.pid]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + kill_loop.ORPHAN_GRACE
        while kill_loop.session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = kill_loop.session_pids(proc.pid)
        assert workers and not left, f"{len(left)} of {len(workers)} child processes outlived the killed index"
    finally:
        for pid in kill_loop.session_pids(proc.pid):
            os.kill(pid, signal.SIGKILL)
    assert kill_loop.run_command(["index"], home, env).rc == 0  # and the resumed run completes


def test_remove_killed_while_saving_the_index_leaves_no_vector_without_an_item(tmp_path, indexed_home):
    """SIGKILL `remove` inside its index save: the index never holds a vector whose item is gone (it used to, when
    the catalogue rows were deleted first), and re-running `remove` finishes the job."""
    env = kill_loop.command_env({}, SHARED)
    keys = None
    for attempt in range(3):  # the kill must land inside one of the save's writes; retry if all were missed
        home = tmp_path / f"home-{attempt}"
        shutil.copytree(indexed_home, home)
        before = kill_loop.read_state(home)
        keys = sorted(before.items)[:5]
        key = next(p.name for p in (home / "index").iterdir())
        trigger = kill_loop.temp_file_trigger([home / "index" / key], 1)
        run = kill_loop.run_command(["remove", *keys], home, env, kill_when=trigger)
        if run.killed:
            break
    assert run.killed, "no kill landed inside the index save in 3 tries"
    after = kill_loop.read_state(home)
    live = {item_id for item_id, _, _ in after.items.values()}
    assert set(after.index_items.tolist()) <= live
    assert set(after.items) in (set(before.items), set(before.items) - set(keys))  # all or nothing
    rerun = kill_loop.run_command(["remove", *keys], home, env)
    assert rerun.rc == 0, rerun.stderr
    final = kill_loop.read_state(home)
    assert set(final.items) == set(before.items) - set(keys)
    assert set(final.index_items.tolist()) == {item_id for item_id, _, _ in final.items.values()}
    assert not [t for t in final.temps if t.startswith("index")]  # the next save deletes a killed save's temp files


def test_sqlite_store_survives_kill_inside_a_transaction(tmp_path):
    """WAL mode with synchronous=NORMAL: a process killed inside a large uncommitted transaction (whose pages have
    already spilled into the WAL) leaves a database that passes integrity_check, keeps the committed row and shows
    none of the uncommitted ones."""
    result = kill_loop.sqlite_kill_mid_transaction(tmp_path, rows=100_000)
    assert result["reached_transaction"]
    assert result["wal_bytes_at_kill"] > 1_000_000  # the uncommitted rows really were written to the WAL
    assert result == {**result, "integrity": "ok", "committed_rows": 1, "uncommitted_rows": 0}


def test_one_writer_per_home_across_processes(tmp_path, indexed_home):
    """While one process holds the home's write lock, another process's write waits for it (and then runs):
    two writers never update one index at once. Reads do not wait."""
    from viscover import Engine, Settings
    from viscover.catalog.store import Filters
    from viscover.fsutil import HomeLock

    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    with Engine(home, Settings(workers=1)) as engine:
        key = engine.store.items_by_ids(engine.store.filter_item_ids(Filters())[:1].tolist()).popitem()[1].key
    script = ("import sys; from viscover import Engine, Settings\n"
              "engine = Engine(sys.argv[1], Settings(workers=1))\n"
              "print('ready', flush=True)\n"
              "print('unknown', engine.remove([sys.argv[2]]), flush=True)\n")
    with HomeLock(home / ".write.lock").held():
        writer = subprocess.Popen([sys.executable, "-c", script, str(home), key], stdout=subprocess.PIPE, text=True)
        try:
            assert writer.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 3.0  # ample for an unblocked remove (milliseconds), never asserted as speed
            while time.monotonic() < deadline and writer.poll() is None:
                time.sleep(0.05)
            assert writer.poll() is None, "the second writer did not wait for the lock"
            with Engine(home, Settings(workers=1)) as reader:  # reads take no lock
                assert reader.store.item(key).key == key
                assert reader.search_item(key, k=1)
        except BaseException:
            writer.kill()
            raise
    assert writer.wait(timeout=120) == 0
    assert writer.stdout.read().strip() == "unknown []"
    with Engine(home, Settings(workers=1)) as engine:
        assert engine.info()["items"] == 58
