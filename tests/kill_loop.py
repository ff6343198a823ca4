"""Crash-safety harness: SIGKILL the `viscover` command at random points, resume it, and check the home folder.

What it does. Each round builds a fresh home from real images (grocery and clothing, ../shared/data) by running a
fixed scenario of CLI commands, each a subprocess `python -m viscover ...`:

    1 ingest A1.csv A2.csv      two manifests: two transactions
    2 index                     embed (worker processes) and save the index
    3 ingest B.csv              new items, plus items sharing the image of an earlier item (exact duplicates)
    4 index
    5 remove R1...              including the newest item, so its row id is reused by the next ingest
    6 ingest C.csv              new items, removed ids added back, existing ids pointing to another image
    7 index
    8 remove R2...
    9 index --rebuild

Each command is SIGKILLed (seeded RNG) in one of four ways: after a delay uniform over its whole run ("anywhere",
start-up included), after a delay uniform over its run once it has opened the store ("working": ingest
transactions, embedding, index updates, removals), inside one of its atomic writes ("in a write": the kill comes
as soon as the temp file of the nth embedding shard or index file appears, so it lands while that file is written,
fsynced or renamed), or as its nth transaction reaches the store ("in a commit": as soon as SQLite's write-ahead
log changes, for ingest and remove). Run lengths (the step's longest run so far), the moment commands open the
store (median so far) and write counts (of the step's first round) are learnt as the loop goes; defaults before.
Sometimes the re-run is killed too (a crash during recovery), and sometimes the saved index is damaged after a
kill (a torn disk). After each kill the harness checks the state the kill left, then re-runs the command to
completion (the "resume") and checks again:

  * crash state: the SQLite store passes `PRAGMA integrity_check` and opens; nothing committed by completed
    commands is lost (items, embedded images, indexed items); an ingest or removal shows only whole transactions
    (a removal is all or nothing); every embedding shard loads whole; the index loads with its checksums verified
    and holds no vector whose item is gone; no process of the killed command is left running.
  * after the resume: the store holds exactly the items the manifests and removals say, each with its image; after
    an `index`: every item's image is embedded, the index holds exactly the items (with their own images' vectors),
    each item is its own nearest neighbour (float and binary search, allowing ties with exact duplicates),
    `Engine.search_item` works for every item and never returns it, its copies or a removed item, and a sample of
    items is found first by `Engine.search_image` of its own image file. A damaged index makes `search` fail with
    a message saying to run `viscover index`, and that `index` rebuilds it from the stored embeddings.

Kills are attributed to phases from the files the kill left (new items, shards, temp files, index generation) and
the files the process had open at the moment of the kill (/proc/PID/fd). Temp files left by killed atomic writes
are counted, and those still there at the end of each round (inert: never read, never mistaken for data; the
next index save deletes the index's, the embeddings' stay).

Run (from the repository root; stops at --kills kills or --max-seconds, whichever comes first, after finishing the
command under way):

    .venv/bin/python tests/kill_loop.py --kills 60 --max-seconds 360

It prints a JSON report and writes it to benchmarks/results/kill_loop.json (--json PATH elsewhere, --json - not at
all). The JSON has the environment, the parameters, kills by phase, lost (must be 0), inconsistent (must be 0),
with up to 50 problem messages, and the seconds taken. The exit status is 1 if anything was lost or inconsistent.
tests/test_crash_safety.py runs a short loop of it and uses its pieces for focused checks.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: conftest beside it
from conftest import SHARED as DATA  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "kill_loop.json"
MAX_PROBLEMS = 50
ORPHAN_GRACE = 3.0  # seconds a killed command's worker processes get to notice and exit
COMMAND_TIMEOUT = 300.0  # a command not killed must finish within this many seconds


# ---- scenario ---------------------------------------------------------------------------------------------------
@dataclass
class Step:
    """One CLI command of the scenario and what it does to the expected catalogue (key -> image path)."""

    name: str
    kind: str  # ingest, index, rebuild, remove
    args: list[str]
    rows: dict[str, str] = field(default_factory=dict)  # ingest: key -> path
    keys: list[str] = field(default_factory=list)  # remove: keys

    def apply(self, expected: dict[str, str]) -> dict[str, str]:
        out = dict(expected)
        if self.kind == "ingest":
            out.update(self.rows)
        elif self.kind == "remove":
            for key in self.keys:
                out.pop(key, None)
        return out


def image_pool(data: Path, n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """About n real rows (60% grocery photos and catalogue images, 40% clothing), drawn with a seeded RNG."""
    from viscover.datasets import clothing_rows, grocery_rows

    rng = random.Random(seed)
    grocery = list(grocery_rows(data / "grocery"))
    clothing = list(clothing_rows(data / "clothing"))
    n_g = int(round(n * 0.6))
    return rng.sample(grocery, n_g), rng.sample(clothing, n - n_g)


def build_scenario(data: Path, work: Path, n_images: int, seed: int) -> list[Step]:
    """Write the scenario's manifests under `work` and return its steps (see the module docstring)."""
    from viscover.datasets import write_manifest

    grocery, clothing = image_pool(data, n_images, seed)
    rng = random.Random(seed + 1)
    g1, g2 = grocery[: len(grocery) * 2 // 3], grocery[len(grocery) * 2 // 3:]
    c1, c2 = clothing[: len(clothing) * 2 // 3], clothing[len(clothing) * 2 // 3:]
    spare = g2[-3:]  # images only ever used as the new image of changed items
    g2 = g2[:-3]
    a1, a2 = g1, c1
    first = [r["id"] for r in a1 + a2]
    dups = [dict(r, id=f"dup-{r['id']}") for r in rng.sample(a1 + a2, 4)]
    b = g2 + dups  # the last row of B is a duplicate: its id is the highest row id when R1 removes it
    r1 = rng.sample(first, max(3, len(first) // 10)) + [dups[0]["id"][4:], b[-1]["id"]]
    r1 = list(dict.fromkeys(r1))
    readd = [r for r in a1 + a2 if r["id"] in set(r1[:3])]
    kept = [r for r in a1 + a2 if r["id"] not in set(r1)]
    changed = [dict(old, path=new["path"]) for old, new in zip(rng.sample(kept, 3), spare)]
    c = c2 + readd + changed
    after_c = {r["id"] for r in a1 + a2 + b + c} - (set(r1) - {r["id"] for r in readd})
    r2 = rng.sample(sorted(after_c), max(2, len(after_c) // 20))
    manifests = {"A1": a1, "A2": a2, "B": b, "C": c}
    paths = {}
    for name, rows in manifests.items():
        paths[name] = work / f"{name}.csv"
        write_manifest(rows, paths[name])
    rows_of = {name: {r["id"]: r["path"] for r in rows} for name, rows in manifests.items()}
    return [
        Step("ingest A1 A2", "ingest", ["ingest", str(paths["A1"]), str(paths["A2"]), "--json"],
             rows={**rows_of["A1"], **rows_of["A2"]}),
        Step("index 1", "index", ["index", "--json"]),
        Step("ingest B", "ingest", ["ingest", str(paths["B"]), "--json"], rows=rows_of["B"]),
        Step("index 2", "index", ["index", "--json"]),
        Step("remove R1", "remove", ["remove", *r1], keys=r1),
        Step("ingest C", "ingest", ["ingest", str(paths["C"]), "--json"], rows=rows_of["C"]),
        Step("index 3", "index", ["index", "--json"]),
        Step("remove R2", "remove", ["remove", *r2], keys=r2),
        Step("index --rebuild", "rebuild", ["index", "--rebuild", "--json"]),
    ]


# ---- running commands -------------------------------------------------------------------------------------------
@dataclass
class Run:
    rc: int | None
    seconds: float
    killed: bool = False
    open_files: list[str] = field(default_factory=list)
    orphans: int = 0
    store_opened: float | None = None  # seconds after start when the store was first seen open
    stdout: str = ""
    stderr: str = ""


def session_pids(sid: int) -> list[int]:
    """Live processes of session `sid` (each command runs in a new session of its own)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(name))
    return out


def _open_files(pid: int) -> list[str]:
    out = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def command_env(settings: dict, data: Path = DATA) -> dict[str, str]:
    """The environment of the commands: these settings, the model cache, and `data` allowed as an image root."""
    env = dict(os.environ)
    env.setdefault("VISCOVER_CACHE", str(REPO / ".cache"))
    env["VISCOVER_IMAGE_ROOTS"] = str(data)  # the manifests (in a temp folder) point into the shared data
    env.update({f"VISCOVER_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_command(args: list[str], home: Path, env: dict[str, str], kill_after: float | None = None,
                kill_when: Callable[[], bool] | None = None) -> Run:
    """Run `python -m viscover ARGS --home HOME`. SIGKILL its main process after `kill_after` seconds, or as soon
    as `kill_when()` is true (polled every millisecond), if it is still running; then give its worker processes
    ORPHAN_GRACE seconds to exit, and count (and kill) those that do not. Also notes when it opened the store."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "viscover", *args, "--home", str(home)], stdout=out,
                                stderr=err, env=env, cwd=home.parent, start_new_session=True)
        run = Run(rc=None, seconds=0.0)
        while True:
            rc = proc.poll()
            now = time.perf_counter() - start
            if rc is not None:
                run.rc = rc
                break
            if run.store_opened is None and any(f.endswith("catalog.sqlite") for f in _open_files(proc.pid)):
                run.store_opened = now
            due = (kill_after is not None and now >= kill_after) or (kill_when is not None and kill_when())
            if due or now > COMMAND_TIMEOUT:
                run.open_files = _open_files(proc.pid)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                run.killed = due
                break
            time.sleep(0.001 if kill_when is not None else 0.01)
        run.seconds = time.perf_counter() - start
        deadline = time.monotonic() + (ORPHAN_GRACE if run.killed else 10.0)
        while session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = session_pids(proc.pid)
        run.orphans = len(left)
        for pid in left:  # processes this harness started; leave nothing behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        out.seek(0)
        err.seek(0)
        run.stdout, run.stderr = out.read(), err.read()
    return run


def wal_trigger(home: Path, nth: int) -> Callable[[], bool]:
    """True once the store's write-ahead log has changed n times. SQLite writes the log's header as the first
    write transaction begins and appends a transaction's pages as it commits, so n = 1 lands inside the first
    transaction, n = 2 just as (or after) it commits, and so on."""
    wal = home / "catalog.sqlite-wal"

    def signature() -> tuple[int, int] | None:
        try:
            st = wal.stat()
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns) if st.st_size else None  # opening the store creates an empty log

    last, changes = [signature()], [0]

    def fired() -> bool:
        now = signature()
        if now is not None and now != last[0]:
            changes[0] += 1
            last[0] = now
        return changes[0] >= nth

    return fired


def temp_file_trigger(folders: list[Path], nth: int) -> Callable[[], bool]:
    """True once the nth new temp file of an atomic write has appeared in `folders` (the kill then lands inside
    that write: while it is written, fsynced or renamed)."""
    old = {f"{d}/{n}" for d in folders if d.is_dir() for n in os.listdir(d)}
    seen: set[str] = set()

    def fired() -> bool:
        for d in folders:
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            seen.update(f"{d}/{n}" for n in names if n.startswith(".") and n.endswith(".tmp")
                        and f"{d}/{n}" not in old)
        return len(seen) >= nth

    return fired


# ---- reading a home folder --------------------------------------------------------------------------------------
@dataclass
class State:
    """What a home folder holds, read without any command running."""

    items: dict[str, tuple[int, int, str]]  # key -> (item id, image id, uri)
    embedded: np.ndarray  # image ids with a stored vector
    index_gen: int  # generation of the saved index (0: none)
    index_items: np.ndarray  # item ids in the saved index
    index_images: np.ndarray  # image id of each
    meta_mtime: int  # embeddings meta.json mtime (rewritten at the start of every `index`)
    temps: set[str]  # leftover temp files of atomic writes
    shards: int
    problems: list[str] = field(default_factory=list)
    corrupt_index: str = ""  # IndexCorruptError message, if the index fails verification


def read_state(home: Path) -> State:
    """Open the store like the CLI does and read everything the checks need; problems are torn or unreadable
    files (a corrupt index is recorded separately: it is detected, which is the designed behaviour)."""
    from viscover import Engine, Settings
    from viscover.embed.vectors import EmbeddingStore
    from viscover.index import IndexCorruptError, VectorIndex

    problems = []
    db = home / "catalog.sqlite"
    items: dict[str, tuple[int, int, str]] = {}
    if db.exists():  # else no command got as far as creating the store
        try:
            con = sqlite3.connect(db)
            try:
                status = con.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                con.close()
            if status != "ok":
                problems.append(f"SQLite integrity_check: {status}")
            with Engine(home, Settings(workers=1), create=False) as engine:
                item_ids, _ = engine.store.item_images()
                for item in engine.store.items_by_ids(item_ids.tolist()).values():
                    items[item.key] = (item.id, item.image_id, item.uri)
        except Exception as e:  # noqa: BLE001 - a store that does not open is what this harness looks for
            problems.append(f"the store does not open: {type(e).__name__}: {e}")
    embedded, meta_mtime, shards, temps = np.zeros(0, np.int64), 0, 0, set()
    for folder in sorted((home / "embeddings").glob("*")):
        store = EmbeddingStore(folder)
        meta = store.meta()
        meta_mtime = (folder / "meta.json").stat().st_mtime_ns if (folder / "meta.json").exists() else 0
        for shard in sorted(folder.glob("shard-*.npz")):
            shards += 1
            try:
                with np.load(shard, allow_pickle=False) as z:
                    ids, vecs = z["ids"], z["vectors"]
                if len(ids) != len(vecs) or vecs.ndim != 2 or vecs.shape[1] != meta.get("dim", vecs.shape[1]) \
                        or not np.isfinite(vecs).all():
                    problems.append(f"torn embedding shard {shard.name}: {len(ids)} ids, vectors {vecs.shape}")
            except Exception as e:  # noqa: BLE001 - any failure to read a shard is a torn shard
                problems.append(f"unreadable embedding shard {shard.name}: {type(e).__name__}: {e}")
        try:
            embedded = store.ids()
        except Exception as e:  # noqa: BLE001
            problems.append(f"embedding store unreadable: {type(e).__name__}: {e}")
    index_gen, index_items, index_images, corrupt = 0, np.zeros(0, np.int64), np.zeros(0, np.int64), ""
    for folder in sorted((home / "index").glob("*")):
        try:
            index = VectorIndex.load(folder, Settings())
        except IndexCorruptError as e:
            corrupt = str(e)
            continue
        if index is not None:
            index_gen = json.loads((folder / "manifest.json").read_text())["generation"]
            index_items, index_images = index.item_ids.copy(), index.image_ids.copy()
    for sub in ("embeddings", "index"):
        temps |= {str(p.relative_to(home)) for p in (home / sub).rglob(".*.tmp")}
    return State(items, embedded, index_gen, index_items, index_images, meta_mtime, temps, shards, problems,
                 corrupt)


# ---- checks -----------------------------------------------------------------------------------------------------
@dataclass
class Tally:
    """Counts over a whole harness run."""

    lost: int = 0
    inconsistent: int = 0
    problems: list[str] = field(default_factory=list)

    def lose(self, n: int, message: str) -> None:
        if n:
            self.lost += n
            self.note(message)

    def bad(self, message: str) -> None:
        self.inconsistent += 1
        self.note(message)

    def note(self, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)


def check_crash_state(step: Step, before: State, after: State, expected: dict[str, str], where: str,
                      tally: Tally) -> None:
    """What must hold at any moment, even right after a SIGKILL."""
    for p in after.problems:
        tally.bad(f"{where}: {p}")
    if after.corrupt_index:
        tally.bad(f"{where}: the index fails verification after a kill: {after.corrupt_index}")
    keys = set(after.items)
    # nothing committed by completed commands is lost
    tally.lose(len(set(expected) - keys) if step.kind != "remove" else len(set(expected) - set(step.keys) - keys),
               f"{where}: committed items lost: {sorted(set(expected) - keys - set(step.keys))[:5]}")
    tally.lose(int((~np.isin(before.embedded, after.embedded)).sum()), f"{where}: embedded images lost")
    if step.kind == "remove":
        gone = set(before.items) - keys
        if gone and gone != set(step.keys) & set(before.items):
            tally.bad(f"{where}: a removal was partly committed: {len(gone)} of {len(step.keys)} items gone")
    elif step.kind == "ingest":
        extra = keys - set(before.items) - set(step.rows)
        if extra:
            tally.bad(f"{where}: items that no manifest has: {sorted(extra)[:5]}")
        for key in keys & set(step.rows):
            if after.items[key][2] not in (step.rows[key], before.items.get(key, (0, 0, ""))[2]):
                tally.bad(f"{where}: item {key} points to {after.items[key][2]}, neither its old nor new image")
    elif keys != set(before.items):
        tally.bad(f"{where}: `{step.name}` changed the catalogue's items")
    # the index never holds a vector without an item, and keeps what it had
    ids = {v[0]: v[1] for v in after.items.values()}
    orphan_vectors = [int(i) for i in after.index_items if int(i) not in ids]
    if orphan_vectors:
        tally.bad(f"{where}: {len(orphan_vectors)} indexed vector(s) without an item: {orphan_vectors[:5]}")
    if not after.corrupt_index:
        still = {v[0] for k, v in before.items.items() if after.items.get(k) == v}
        if step.kind == "remove":
            still -= {before.items[k][0] for k in step.keys if k in before.items}
        kept = np.isin(before.index_items, sorted(still))
        lost = ~np.isin(before.index_items[kept], after.index_items)
        tally.lose(int(lost.sum()), f"{where}: indexed items dropped from the index: "
                                    f"{before.index_items[kept][lost][:5].tolist()}")


def check_catalogue(after: State, expected: dict[str, str], where: str, tally: Tally) -> None:
    """After a completed command: the store holds exactly the expected items, each with its image."""
    for p in after.problems:
        tally.bad(f"{where}: {p}")
    keys = set(after.items)
    tally.lose(len(set(expected) - keys), f"{where}: items missing: {sorted(set(expected) - keys)[:5]}")
    if keys - set(expected):
        tally.bad(f"{where}: unexpected items (removed ones back?): {sorted(keys - set(expected))[:5]}")
    wrong = [k for k in keys & set(expected) if after.items[k][2] != expected[k]]
    if wrong:
        tally.bad(f"{where}: {len(wrong)} item(s) with the wrong image, e.g. {wrong[0]}")
    ids = {v[0] for v in after.items.values()}
    orphan_vectors = [int(i) for i in after.index_items if int(i) not in ids]
    if orphan_vectors:
        tally.bad(f"{where}: {len(orphan_vectors)} indexed vector(s) without an item: {orphan_vectors[:5]}")


def check_searchable(home: Path, after: State, where: str, tally: Tally, rng: random.Random,
                     sample_images: int = 4) -> int:
    """After a completed `index`: the index holds exactly the items, and every item is findable. Returns the
    number of items checked (an exception on the way is an inconsistency too)."""
    try:
        return _check_searchable(home, after, where, tally, rng, sample_images)
    except Exception as e:  # noqa: BLE001
        tally.bad(f"{where}: searching failed: {type(e).__name__}: {e}")
        return 0


def _check_searchable(home: Path, after: State, where: str, tally: Tally, rng: random.Random,
                      sample_images: int) -> int:
    from viscover import Engine, Settings
    from viscover.embed.vectors import EmbeddingStore

    if after.corrupt_index:
        tally.bad(f"{where}: index fails verification after a completed `index`: {after.corrupt_index}")
        return 0
    by_id = {v[0]: (k, v[1], v[2]) for k, v in after.items.items()}
    not_embedded = [k for k, v in after.items.items() if not np.isin(v[1], after.embedded)]
    if not_embedded:
        tally.bad(f"{where}: {len(not_embedded)} item image(s) never embedded, e.g. {not_embedded[0]}")
    want = np.array(sorted(i for i, (_, img, _) in by_id.items() if np.isin(img, after.embedded)), np.int64)
    missing = np.setdiff1d(want, after.index_items)
    if len(missing):
        tally.bad(f"{where}: {len(missing)} embedded item(s) not in the index, e.g. {by_id[int(missing[0])][0]}")
    extra = np.setdiff1d(after.index_items, want)
    if len(extra):
        tally.bad(f"{where}: {len(extra)} indexed vector(s) without an embedded item: {extra[:5].tolist()}")
    wrong_image = [int(i) for i, img in zip(after.index_items, after.index_images)
                   if int(i) in by_id and by_id[int(i)][1] != int(img)]
    if wrong_image:
        tally.bad(f"{where}: {len(wrong_image)} indexed item(s) with another image's vector")
    copies: dict[int, list[int]] = {}
    for item_id, (_, image_id, _) in by_id.items():
        copies.setdefault(image_id, []).append(item_id)
    checked = 0
    with Engine(home, Settings(workers=1)) as engine:
        index = engine.vector_index()
        folder = home / "embeddings" / engine.embedder().key
        raw_ids, raw = EmbeddingStore(folder).load(np.unique(index.image_ids))
        expect = index.codec.floats(raw[np.searchsorted(raw_ids, index.image_ids)])
        stored = index.stored_floats(index.item_ids)
        err = float(np.abs(stored - expect).max()) if len(stored) else 0.0
        if err > 1e-4:
            tally.bad(f"{where}: indexed vectors differ from the stored embeddings of their images by {err:.2g}")
        for item_id in index.item_ids.tolist():
            key, image_id, _ = by_id.get(item_id, ("?", -1, ""))
            same = copies.get(image_id, [item_id])
            floats, bits = stored[np.searchsorted(index.item_ids, item_id)], index.stored_bits(np.array([item_id]))
            for binary in (False, True):
                hits = index.search(floats, bits, len(same) + 2, binary=binary)
                pos = np.flatnonzero(hits.ids == item_id)
                if len(pos) == 0 or hits.scores[pos[0]] < hits.scores[0] - 1e-5:
                    tally.bad(f"{where}: item {key} is not its own nearest neighbour "
                              f"({'binary' if binary else 'float'} search)")
            found = engine.search_item(key, k=3, collapse=False)
            bad = [h.item.key for h in found if h.item.id in same or h.item.key not in after.items]
            if bad:
                tally.bad(f"{where}: search_item({key}) returned itself, a copy or a removed item: {bad}")
            checked += 1
        for key in rng.sample(sorted(after.items), min(sample_images, len(after.items))):
            item_id, image_id, uri = after.items[key]
            hits = engine.search_image(uri, k=len(copies.get(image_id, [])) + 2, collapse=False)
            if not hits or hits[0].item.image_id != image_id or hits[0].score < 0.99:
                top = f"{hits[0].item.key} ({hits[0].score:.3f})" if hits else "nothing"
                tally.bad(f"{where}: search_image of {key}'s own image found {top} first")
    return checked


def phase_of(step: Step, before: State, after: State, open_files: list[str], mode: str = "") -> str:
    """Where a kill landed, from what it left, what the process had open and how it was triggered."""
    store_open = any(f.endswith("catalog.sqlite") for f in open_files)
    new_temps = after.temps - before.temps
    index_temps = ", ".join(sorted({_written(t) for t in new_temps if t.startswith("index")}))
    if step.kind == "ingest":
        todo = {k for k, p in step.rows.items() if before.items.get(k, (0, 0, ""))[2] != p}
        done = {k for k in todo if k in after.items and after.items[k][2] == step.rows[k]}
        if todo and done == todo:
            return "ingest: after the last commit (exiting)"
        if done:
            return "ingest: between transactions"
        if mode == "in a commit":
            return "ingest: inside the first transaction"
        if not store_open:
            return "ingest: start-up"
        return "ingest: reading images, first transaction" if todo else "ingest: re-reading committed rows"
    if step.kind == "remove":
        gone = set(before.items) - set(after.items)
        index_changed = after.index_gen != before.index_gen
        if gone and (index_changed or not len(before.index_items)):
            return "remove: after both (exiting)"
        if index_temps:
            return f"remove: writing the index ({index_temps})"
        if gone:
            return "remove: between store delete and index save"
        if mode == "in a commit":
            return "remove: inside the delete transaction"
        if index_changed:
            return "remove: between index save and store delete"
        return "remove: before any change" if store_open else "remove: start-up"
    if after.index_gen != before.index_gen:
        return f"{step.kind}: after index save"
    if index_temps:
        return f"{step.kind}: writing the index ({index_temps})"
    if any(t.startswith("embeddings") for t in new_temps):
        return f"{step.kind}: writing an embedding shard"
    if after.meta_mtime == before.meta_mtime:
        return f"{step.kind}: start-up (imports, model)"
    images = {v[1] for v in after.items.values()}
    if images <= set(after.embedded.tolist()):
        return f"{step.kind}: building/updating the index"
    return f"{step.kind}: embedding images"


def _written(temp: str) -> str:
    """Which file a leftover temp file was to become: '.float-3.faiss.x1y2.tmp' -> 'float file'."""
    name = Path(temp).name.lstrip(".")
    return name.split("-")[0].split(".")[0] + " file"


def damage_index(home: Path) -> bool:
    """Overwrite bytes in the middle of the saved float index file (as a torn disk would); False if none."""
    for manifest in (home / "index").glob("*/manifest.json"):
        path = manifest.parent / json.loads(manifest.read_text())["files"]["float"]["name"]
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.seek(size // 2)
            f.write(b"\xde\xad\xbe\xef" * 8)
        return True
    return False


@dataclass
class Timing:
    """What is known of one step's runs, to place kills in them: its longest run (killed or not) and the writes of
    its runs, defaults until it has run; and when commands open the store (median over all runs of all steps)."""

    seconds: float
    store_opened: float = 1.5
    shard_writes: int = 1
    index_writes: int = 4


DEFAULT_SECONDS = {"ingest": 2.5, "index": 4.0, "remove": 2.0, "rebuild": 3.0}


def plan_kill(step: Step, home: Path, model_key: str, timing: Timing,
              rng: random.Random) -> tuple[str, float | None, Callable[[], bool] | None]:
    """How to kill one run of `step`: (mode, kill_after, kill_when). Modes: "anywhere" (uniform over the whole
    run, start-up included), "working" (uniform over the run after the store is opened), "in a write" (inside
    one of the atomic file writes a full run makes) and "in a commit" (as an ingest's or removal's transaction
    is written to the store)."""
    r = rng.random()
    if r < 0.25:
        return "anywhere", rng.uniform(0.0, timing.seconds), None
    if r < 0.6 or (step.kind != "ingest" and not model_key):
        return "working", timing.store_opened + rng.uniform(0.0, 0.95 * max(timing.seconds - timing.store_opened,
                                                                              0.05)), None
    if step.kind == "ingest" or (step.kind == "remove" and rng.random() < 0.5):
        transactions = sum(a.endswith(".csv") for a in step.args) if step.kind == "ingest" else 1
        return "in a commit", None, wal_trigger(home, rng.randint(1, transactions + 1))
    index_dir, embed_dir = home / "index" / model_key, home / "embeddings" / model_key
    if step.kind == "index" and timing.shard_writes and rng.random() < 0.5:
        return "in a write", None, temp_file_trigger([embed_dir], rng.randint(1, timing.shard_writes))
    return "in a write", None, temp_file_trigger([index_dir], rng.randint(1, max(1, timing.index_writes)))


# ---- the loop ---------------------------------------------------------------------------------------------------
@dataclass
class KillLoopConfig:
    kills: int = 60  # stop after this many kills ...
    max_seconds: float = 360.0  # ... or this many seconds, whichever comes first (the command under way finishes)
    images: int = 200
    seed: int = 0
    second_kill: float = 0.25  # probability of also killing the re-run of a killed command
    damage: float = 0.2  # probability of damaging the index after a kill of `index`
    workers: int = 2
    shard_size: int = 32  # small shards: many shard writes to kill
    work: Path | None = None  # homes and manifests go here (default: a temp folder, deleted)
    data: Path = DATA


class _Loop:
    """The state of one harness run: the scenario, the counts, and what is known of each step's timing."""

    def __init__(self, cfg: KillLoopConfig, work: Path, log):
        self.cfg, self.log = cfg, log
        self.steps = build_scenario(cfg.data, work, cfg.images, cfg.seed)
        self.env = command_env({"workers": cfg.workers, "shard_size": cfg.shard_size}, cfg.data)
        self.rng = random.Random(cfg.seed)
        self.tally = Tally()
        self.phases: Counter = Counter()
        self.modes: Counter = Counter()
        self.counts: Counter = Counter()
        self.timing: dict[str, Timing] = {}
        self.opened: list[float] = []  # seconds after start when commands opened the store
        self.model_key = ""
        self.start = time.perf_counter()

    def budget_left(self) -> bool:
        return self.counts["kills"] < self.cfg.kills and time.perf_counter() - self.start < self.cfg.max_seconds

    def run(self, args: list[str], home: Path, **kill) -> Run:
        run = run_command(args, home, self.env, **kill)
        self.counts["commands"] += 1
        self.counts["orphan_processes"] += run.orphans
        return run

    def round(self, home: Path) -> None:
        """The whole scenario on a fresh home, each step killed (while the budget lasts) and resumed."""
        expected: dict[str, str] = {}
        state = read_state(home)
        for step in self.steps:
            if not self.budget_left() and self.counts["rounds"] > 0:
                return
            kills = (2 if self.rng.random() < self.cfg.second_kill else 1) if self.budget_left() else 0
            state = self.step(step, home, state, expected, kills)
            expected = step.apply(expected)
        self.counts["rounds"] += 1
        for where in ("index", "embeddings"):
            self.counts[f"temp_files_at_round_end_{where}"] += sum(t.startswith(where) for t in state.temps)

    def step(self, step: Step, home: Path, state: State, expected: dict[str, str], kills: int) -> State:
        where = f"round {self.counts['rounds']}, {step.name}"
        timing = self.timing.get(step.name) or Timing(DEFAULT_SECONDS[step.kind])
        if self.opened:
            timing.store_opened = float(np.median(self.opened))
        seen = step.name in self.timing
        first = state
        for attempt in range(kills + 1):  # the last attempt is never killed: it is the resume run
            mode, plan = "", {}
            if attempt < kills:
                mode, kill_after, kill_when = plan_kill(step, home, self.model_key, timing, self.rng)
                plan = {"kill_after": kill_after, "kill_when": kill_when}
            run = self.run(step.args, home, **plan)
            timing.seconds = max(timing.seconds, run.seconds) if seen else run.seconds
            seen = True
            if run.store_opened is not None:
                self.opened.append(run.store_opened)
            if run.orphans:
                self.tally.bad(f"{where}: {run.orphans} process(es) of the killed command still running "
                               f"{ORPHAN_GRACE:.0f} s after the kill")
            if not run.killed:
                self.counts["kills_missed"] += bool(mode)  # it finished first
                break
            self.counts["kills"] += 1
            self.modes[mode] += 1
            after = read_state(home)
            self.counts["leftover_temp_files"] += len(after.temps - state.temps)
            phase = phase_of(step, state, after, run.open_files, mode)
            self.phases[phase] += 1
            self.log(f"{where}: killed ({mode}) after {run.seconds:.2f}s in {phase!r}")
            check_crash_state(step, state, after, expected, f"{where}, after a kill in {phase}", self.tally)
            state = after
            if step.kind == "index" and not after.corrupt_index and after.index_gen \
                    and self.rng.random() < self.cfg.damage and damage_index(home):
                run = self.damaged(step, home, expected, where)
                break
        ok = run.rc == 0 or (step.kind == "remove" and run.rc == 1 and "unknown item id" in run.stderr)
        if not ok:
            self.tally.bad(f"{where}: the command failed with exit {run.rc}: {run.stderr.strip()[-300:]}")
        expected = step.apply(expected)
        after = read_state(home)
        if step.name not in self.timing:  # the writes a whole run of this step makes, killed ones included
            timing.shard_writes = max(0, after.shards - first.shards)
            timing.index_writes = 4 if after.index_gen != first.index_gen else 0
        self.timing[step.name] = timing
        self.model_key = self.model_key or next((p.name for p in (home / "embeddings").glob("*")), "")
        check_catalogue(after, expected, f"{where}, completed", self.tally)
        if step.kind in ("index", "rebuild"):
            self.counts["items_verified_searchable"] += check_searchable(home, after, f"{where}, completed",
                                                                         self.tally, self.rng)
        return after

    def damaged(self, step: Step, home: Path, expected: dict[str, str], where: str) -> Run:
        """The index was damaged after a kill: `search` must refuse it with a clear message, and the re-run of
        `index` must rebuild it from the stored embeddings, saying why."""
        self.counts["indexes_damaged"] += 1
        probe = self.run(["search", "--item", sorted(expected)[0]], home)
        if probe.rc != 1 or "viscover index" not in probe.stderr:
            self.tally.bad(f"{where}: search on a damaged index: exit {probe.rc}, {probe.stderr[-200:]!r}")
        run = self.run(step.args, home)
        report = json.loads(run.stdout) if run.rc == 0 and run.stdout.strip() else {}
        if report.get("rebuilt") and "checksum" in report.get("rebuild_reason", ""):
            self.counts["damaged_indexes_rebuilt"] += 1
        else:
            self.tally.bad(f"{where}: damaged index not rebuilt with a clear reason: exit {run.rc}, "
                           f"{report.get('rebuild_reason')!r} {run.stderr[-200:]!r}")
        return run

    def result(self) -> dict:
        c = self.counts
        return {
            "rounds_completed": c["rounds"],
            "commands_run": c["commands"],
            "kills": c["kills"],
            "kills_by_phase": dict(sorted(self.phases.items())),
            "kills_by_mode": dict(sorted(self.modes.items())),
            "kills_missed": c["kills_missed"],
            "indexes_damaged": c["indexes_damaged"],
            "damaged_indexes_rebuilt": c["damaged_indexes_rebuilt"],
            "items_verified_searchable": c["items_verified_searchable"],
            "lost": self.tally.lost,
            "inconsistent": self.tally.inconsistent,
            "problems": self.tally.problems,
            "orphan_processes": c["orphan_processes"],
            "temp_files_left_by_kills": c["leftover_temp_files"],
            "temp_files_at_round_end": {"index": c["temp_files_at_round_end_index"],
                                        "embeddings": c["temp_files_at_round_end_embeddings"]},
            "longest_run_seconds": {k: round(t.seconds, 2) for k, t in self.timing.items()},
            "store_opened_after_seconds_median": round(float(np.median(self.opened)), 2) if self.opened else None,
            "seconds": round(time.perf_counter() - self.start, 1),
        }


def run_kill_loop(cfg: KillLoopConfig, log=lambda message: None) -> dict:
    """Run rounds of the scenario with kills until cfg.kills or cfg.max_seconds; return the counts as a dict."""
    import faiss

    faiss.omp_set_num_threads(1)  # the checks' many tiny searches: OpenMP threads only spin on a busy machine
    with tempfile.TemporaryDirectory(prefix="viscover-kill-loop-", dir=cfg.work) as tmp:
        loop = _Loop(cfg, Path(tmp), log)
        n = 0
        while loop.budget_left():
            home = Path(tmp) / f"home-{n}"
            home.mkdir()
            loop.round(home)
            log(f"round {n} done: {loop.counts['kills']} kills, {loop.tally.lost} lost, "
                f"{loop.tally.inconsistent} inconsistent, {time.perf_counter() - loop.start:.0f}s")
            n += 1
        return loop.result()


def sqlite_kill_mid_transaction(folder: Path, rows: int = 200_000) -> dict:
    """SIGKILL a process inside a large uncommitted transaction on a WAL-mode catalogue (synchronous=NORMAL, as
    the store opens it), after one committed transaction; report what survived."""
    db = folder / "catalog.sqlite"
    code = f"""
import sys, time
from viscover.catalog.store import CatalogStore
from sqlalchemy import text
store = CatalogStore("sqlite:///{db}")
with store.engine.begin() as conn:
    conn.execute(text("CREATE TABLE IF NOT EXISTS t (i INTEGER PRIMARY KEY, v TEXT)"))
    conn.execute(text("INSERT INTO t (v) VALUES ('committed')"))
with store.engine.begin() as conn:
    for start in range(0, {rows}, 10000):
        conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{{"v": "x" * 100}}] * 10000)
    print("in transaction", flush=True)
    time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            start_new_session=True, env=command_env({}))
    line = proc.stdout.readline()
    wal = (folder / "catalog.sqlite-wal").stat().st_size if (folder / "catalog.sqlite-wal").exists() else 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    con = sqlite3.connect(db)
    try:
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        values = [v for (v,) in con.execute("SELECT v FROM t")]
    finally:
        con.close()
    from viscover.catalog.store import CatalogStore

    store = CatalogStore(f"sqlite:///{db}")  # opens like every command does
    store.close()
    return {"reached_transaction": line.strip() == "in transaction", "wal_bytes_at_kill": wal,
            "integrity": integrity, "committed_rows": values.count("committed"),
            "uncommitted_rows": len(values) - values.count("committed")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=60, help="Stop after this many kills.")
    parser.add_argument("--max-seconds", type=float, default=360.0, help="... or after this many seconds.")
    parser.add_argument("--images", type=int, default=200, help="Real images in the scenario.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="Embedding worker processes of `index`.")
    parser.add_argument("--json", dest="json_path", default=str(RESULT),
                        help="Also write the result to this file (- for none).")
    args = parser.parse_args(argv)
    if not (args.images >= 40 and (DATA / "grocery").is_dir() and (DATA / "clothing").is_dir()):
        sys.exit(f"need --images >= 40 and the real image data at {DATA} (set VISCOVER_SHARED_DATA)")
    os.environ.setdefault("VISCOVER_CACHE", str(REPO / ".cache"))
    cfg = KillLoopConfig(kills=args.kills, max_seconds=args.max_seconds, images=args.images, seed=args.seed,
                         workers=args.workers)
    result = run_kill_loop(cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    with tempfile.TemporaryDirectory() as tmp:
        result["sqlite_kill_mid_transaction"] = sqlite_kill_mid_transaction(Path(tmp))
    sys.path.insert(0, str(REPO / "benchmarks"))  # the benchmarks' environment description and JSON output
    from common import emit, environment

    out = {"benchmark": "kill_loop", **environment(), "parameters": {
        "kills": cfg.kills, "max_seconds": cfg.max_seconds, "images": cfg.images, "seed": cfg.seed,
        "workers": cfg.workers, "shard_size": cfg.shard_size, "second_kill": cfg.second_kill,
        "damage": cfg.damage}, "result": result}
    emit(out, None if args.json_path == "-" else args.json_path)
    return 1 if result["lost"] or result["inconsistent"] else 0


if __name__ == "__main__":
    sys.exit(main())
