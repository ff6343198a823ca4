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
tests/test_crash_safety.py runs a short loop of it and uses its pieces for focused checks. The harness is three
modules: this one (the loop and its kill plans), kill_loop_process.py (running and killing commands) and
kill_loop_home.py (the scenario, reading a home folder, and the checks).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: its modules and conftest beside it
from conftest import SHARED as DATA  # noqa: E402
from kill_loop_home import (State, Step, Tally, build_scenario, check_catalogue, check_crash_state,  # noqa: E402
                            check_searchable, damage_index, phase_of, read_state)
from kill_loop_process import (ORPHAN_GRACE, Run, command_env, run_command, session_pids,  # noqa: E402
                               sqlite_kill_mid_transaction, temp_file_trigger, wal_trigger)

__all__ = ["KillLoopConfig", "run_kill_loop", "main",  # the loop, and its pieces (for tests/test_crash_safety.py)
           "ORPHAN_GRACE", "Run", "command_env", "run_command", "session_pids", "sqlite_kill_mid_transaction",
           "temp_file_trigger", "wal_trigger", "State", "Step", "read_state"]

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "kill_loop.json"


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
