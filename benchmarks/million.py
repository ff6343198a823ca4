"""A million-item catalogue on one machine, end to end through viscover: metadata ingest, imported vectors, index
builds of the kinds a memory budget chooses between, search by id in-process (next to the index alone and to raw
FAISS with the same parameters on the same vectors) and over HTTP (wrk at 1, 4, 16 and 64 connections).

Data (seeded): N items with no image files (a manifest with an `id` column and no `path`: issue 13's "bring your
own vectors"), their vectors (dim 256, the width of a trained model's head) from the Gaussian mixture of
benchmarks/search_speed.py, imported from Parquet as the declared model `synthetic-256`; each item labelled with its
mixture component (`category`, one of 2,048) and on --boards-per-item boards (default 10: 10M memberships at 1M
items): 8 of its component's 32 boards, Zipf-weighted, and 2 of N/50 boards mixing all components (item_boards).
Ground truth: exact cosine top-10 of the catalogue-centred vectors (what viscover searches), the query item itself
left out as search by id does.

Every step runs in its own process, so that its peak RSS (ru_maxrss) is its own. Run from the repository root:

    .venv/bin/python benchmarks/million.py --json benchmarks/results/million.json
    .venv/bin/python benchmarks/million.py --items 100000 --kinds binary --http-seconds 5   # a quick check
    .venv/bin/python benchmarks/million.py --dir /work/m10 --resume ...   # keep the work folder; rerun what is new

Over HTTP, each endpoint is driven by two query streams: "repeated" (300 items: a hot set, which the server's
caches keep) and "distinct" (100,000 items: nearly every request new), so that neither flatters the other.

Needs `wrk` (Debian package) for the HTTP part; without it that part is skipped and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from common import emit, environment  # noqa: E402

MODEL = "synthetic-256"
K = 10
HERE = Path(__file__).resolve()


# ---- steps, each run in a child process ------------------------------------------------------------------------
def item_boards(label: int, rng: np.random.Generator, per_item: int, mixed_boards: int) -> str:
    """The boards of one item of looks cluster `label`: per_item - 2 of its cluster's 32 boards (Zipf-weighted: board
    sizes vary with the rank and with the cluster's size) and 2 of `mixed_boards` boards shared across clusters."""
    own = rng.choice(32, size=per_item - 2, replace=False, p=CLUSTER_BOARD_P)
    mixed = rng.choice(mixed_boards, size=2, replace=False)
    return ";".join([f"b{label}-{j}" for j in own] + [f"mix-{j}" for j in mixed])


CLUSTER_BOARD_P = (1.0 / np.arange(1, 33)) / (1.0 / np.arange(1, 33)).sum()


def step_generate(work: Path, n: int, dim: int, queries: int, seed: int, per_item: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from search_speed import Mixture

    t = time.perf_counter()
    mix = Mixture(dim, 2048, 64, 3.0, 0.2, seed)
    rng = np.random.default_rng(seed)
    labels = np.empty(n, np.int64)
    mean = np.zeros(dim, np.float64)
    keys = np.array([f"item-{i:07d}" for i in range(n)], dtype=object)
    writer = pq.ParquetWriter(work / "vectors.parquet", pa.schema([("id", pa.string()),
                                                                   ("vector", pa.list_(pa.float32(), dim))]))
    rows = []
    for start in range(0, n, 100_000):
        count = min(100_000, n - start)
        part_rng = np.random.default_rng([seed, 1, start])
        comp = part_rng.choice(len(mix.weights), size=count, p=mix.weights)
        raw = mix.sample(count, (1, start))
        labels[start:start + count] = comp
        mean += raw.sum(axis=0, dtype=np.float64)
        np.save(work / f"raw-{start:08d}.npy", raw)
        flat = pa.array(raw.reshape(-1), pa.float32())
        writer.write_table(pa.table({"id": keys[start:start + count].tolist(),
                                     "vector": pa.FixedSizeListArray.from_arrays(flat, dim)}))
        for i in range(start, start + count):
            rows.append((keys[i], f"c{labels[i]}", "photo", item_boards(int(labels[i]), rng, per_item, n // 50)))
    writer.close()
    pq.write_table(pa.table({"id": [r[0] for r in rows], "label.category": [r[1] for r in rows],
                             "domain": [r[2] for r in rows], "boards": [r[3] for r in rows]}),
                   work / "catalogue.parquet")
    mean /= n
    raw = np.concatenate([np.load(p) for p in sorted(work.glob("raw-*.npy"))])
    floats = raw - mean.astype(np.float32)
    floats /= np.linalg.norm(floats, axis=1, keepdims=True)
    picked = np.sort(np.random.default_rng([seed, 2]).choice(n, size=queries, replace=False))
    truth = []
    for q in picked:
        scores = floats @ floats[q]
        scores[q] = -np.inf  # search by id leaves the item itself out
        top = np.argpartition(-scores, K)[:K]
        truth.append(top[np.argsort(-scores[top])])
    np.savez(work / "truth.npz", queries=picked, truth=np.array(truth))
    np.save(work / "floats.npy", floats)
    for p in work.glob("raw-*.npy"):
        p.unlink()
    return {"seconds": round(time.perf_counter() - t, 1), "items": n, "dim": dim, "queries": queries,
            "data": mix.describe(), "memberships": sum(r[3].count(";") + 1 for r in rows)}


def step_ingest(work: Path, home: Path) -> dict:
    from viscover import Engine, Settings

    with Engine(home, Settings(model=MODEL)) as engine:
        t = time.perf_counter()
        report = engine.ingest(work / "catalogue.parquet")
        seconds = time.perf_counter() - t
    return {"seconds": round(seconds, 1), "rows_per_s": round(report.rows / seconds),
            "added": report.counts.added, "skipped": report.skipped_total}


def step_import(work: Path, home: Path, dim: int) -> dict:
    from viscover import Engine, Settings

    with Engine(home, Settings(model=MODEL)) as engine:
        t = time.perf_counter()
        report = engine.import_vectors(work / "vectors.parquet", model=MODEL, dim=dim)
        seconds = time.perf_counter() - t
    return {"seconds": round(seconds, 1), "report": report.to_dict()}


def step_index(home: Path, kind: str) -> dict:
    from viscover import Engine, Settings

    with Engine(home, Settings(model=MODEL, index_kind=kind)) as engine:
        t = time.perf_counter()
        report = engine.index(rebuild=True)
        seconds = time.perf_counter() - t
    folder = next((home / "index").iterdir())
    disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {"seconds": round(seconds, 1), "kind": report.kind, "size": report.size, "index_disk_bytes": disk}


def _percentiles(times: list[float]) -> dict:
    ms = np.array(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "mean_ms": round(float(ms.mean()), 3)}


def _recall(found: list[list[int]], truth: np.ndarray) -> float:
    return round(float(np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth)])), 4)


def step_search(work: Path, home: Path, kind: str) -> dict:
    """Search by id through the Engine (no collapse, then the default with near-duplicate collapse) and through
    its index alone, one query at a time from one thread, after 50 warm-up queries; the Engine's first pass is over
    items it has not seen (their metadata read from the catalogue), `engine_collapse_warm` repeats it (a hot set)."""
    import faiss

    from viscover import Engine, Settings

    faiss.omp_set_num_threads(1)
    data = np.load(work / "truth.npz")
    queries, truth = data["queries"], data["truth"]
    keys = [f"item-{i:07d}" for i in queries]
    out: dict = {}
    with Engine(home, Settings(model=MODEL, index_kind=kind)) as engine:
        index = engine.vector_index()
        for key in keys[:50]:
            engine.search_item(key, k=K, collapse=False)
        for collapse in (False, True):
            found, times = [], []
            for key in keys:
                t = time.perf_counter()
                hits = engine.search_item(key, k=K, collapse=collapse)
                times.append(time.perf_counter() - t)
                found.append([int(h.item.key[5:]) for h in hits])
            out["engine_collapse" if collapse else "engine"] = {**_percentiles(times),
                                                                "recall_at_10": _recall(found, truth)}
        times = []  # the same queries again: items and results now in the item cache (a hot set)
        for key in keys:
            t = time.perf_counter()
            engine.search_item(key, k=K)
            times.append(time.perf_counter() - t)
        out["engine_collapse_warm"] = _percentiles(times)
        ids = np.array([engine.item(k).id for k in keys], np.int64)
        times, found_rows = [], []
        for i in ids:
            q = index.stored_query(np.array([i]))
            t = time.perf_counter()
            hits = index.search(q, K + 1)
            times.append(time.perf_counter() - t)
            found_rows.append([int(x) for x in hits.ids if x != i][:K])
        rows = sorted({r for f in found_rows for r in f})
        position = {r: int(item.key[5:]) for r, item in engine.store.items_by_ids(rows).items()}
        out["index_alone"] = {**_percentiles(times),
                              "recall_at_10": _recall([[position[r] for r in f] for f in found_rows], truth)}
        out["describe"] = index.describe()
    return out


def step_raw(work: Path, kind: str, n: int, dim: int) -> dict:
    """Raw FAISS with the plan's structure and parameters on the same centred unit vectors (benchmarks/
    index_kinds.py's `raw_faiss`), one query at a time from one thread."""
    import faiss
    import index_kinds
    from index_kinds import raw_faiss

    index_kinds.K = K + 1  # the query item comes back first: fetch one more, as search by id's exclusion does

    from viscover.config import Settings
    from viscover.index.plan import plan_index

    settings = Settings(index_kind=kind)
    floats = np.load(work / "floats.npy", mmap_mode="r")
    floats = np.ascontiguousarray(floats)
    data = np.load(work / "truth.npz")
    queries, truth = data["queries"], data["truth"]
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    search, build_s = raw_faiss(kind, floats, settings, plan_index(n, dim, settings))
    faiss.omp_set_num_threads(1)
    for q in queries[:50]:
        search(floats[q][None])
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        ids = search(floats[q][None])
        times.append(time.perf_counter() - t)
        found.append([int(x) for x in ids if x != q][:K])
    return {**_percentiles(times), "recall_at_10": _recall(found, truth), "build_s": round(build_s, 1),
            "note": "fetches k+1 and drops the query item, as search by id does"}


def home_kind(home: Path) -> str | None:
    """The kind of the index saved in the home now (each kind's index step replaces it): a resumed run that
    re-ran another kind's steps rebuilds the served kind's index instead of serving the other."""
    for manifest in sorted((home / "index").glob("*/manifest.json")):
        m = json.loads(manifest.read_text())
        return m.get("kind") or {"hnsw": "hnsw", "flat": "exact"}.get(m.get("float_kind", ""))
    return None


# ---- HTTP ------------------------------------------------------------------------------------------------------
# each wrk thread draws its own seeded sequence (one seed for all made two threads ask for the same items, so a
# "distinct" stream repeated every item once)
LUA = """
local ids = {}
for line in io.lines(os.getenv("VISCOVER_IDS")) do ids[#ids + 1] = line end
local threads = 0
setup = function(thread)
  thread:set("thread_number", threads)
  threads = threads + 1
end
init = function(args)
  math.randomseed(7 + 7919 * (thread_number or 0))
end
request = function()
  return wrk.format("GET", os.getenv("VISCOVER_PATH") .. ids[math.random(#ids)])
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_cpu(pid: int) -> float:
    """CPU seconds of a server process and its children (the workers)."""
    total = 0.0
    for p in [pid, *(int(c) for c in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                      text=True).stdout.split())]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def http(home: Path, work: Path, seconds: float, connections: list[int], n: int, workers: str) -> dict:
    """`viscover serve` (default settings but the model; --workers if given) under wrk: search by id and related
    items, each with two query streams: "repeated" (the 300 truth queries, drawn at random: a hot set) and
    "distinct" (100,000 seeded random items: almost every request a new item, nothing kept from an earlier one)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    port = _free_port()
    viscover = Path(sys.executable).parent / "viscover"
    extra = ["--workers", workers] if workers else []
    server = subprocess.Popen([str(viscover), "serve", "--home", str(home), "--port", str(port), "--no-auth",
                               "--log-level", "warning", *extra],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "VISCOVER_MODEL": MODEL}, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if json.load(urllib.request.urlopen(base + "/api/ready", timeout=5)).get("ready"):
                    break
            except OSError:
                time.sleep(0.5)
        data = np.load(work / "truth.npz")
        streams = {"repeated": data["queries"],
                   "distinct": np.random.default_rng(99).choice(n, size=min(n, 100_000), replace=False)}
        script = work / "ids.lua"
        script.write_text(LUA)
        expected = int(workers) if workers else len(os.sched_getaffinity(0))  # serve_workers 0: one per core
        out: dict = {"workers": workers or f"default (serve_workers: {expected} here)"}
        for name, path in (("search_by_id", "/api/search?k=10&item="), ("related", "/api/related?k=10&item=")):
            seen: set[str] = set()  # warm every worker: each builds its graph on its first related request
            for _ in range(200):
                with urllib.request.urlopen(base + path + "item-0000001", timeout=900) as answer:
                    seen.add(answer.headers.get("X-Viscover-Worker", "one"))
                if len(seen) >= expected:
                    break
            for stream, ids in streams.items():
                ids_file = work / f"ids-{stream}.txt"
                ids_file.write_text("\n".join(f"item-{i:07d}" for i in ids) + "\n")
                rows = []
                for c in connections:
                    env = {**os.environ, "VISCOVER_IDS": str(ids_file), "VISCOVER_PATH": path}
                    cpu0 = _server_cpu(server.pid)
                    proc = subprocess.Popen([wrk, "-t", str(min(2, c)), "-c", str(c), "-d", f"{seconds:g}s",
                                             "--latency", "-s", str(script), base], stdout=subprocess.PIPE,
                                            text=True, env=env)
                    text = proc.stdout.read()
                    _, status, usage = os.wait4(proc.pid, 0)
                    row = {"connections": c, **_parse_wrk(text),
                           "wrk_cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}
                    row["server_cpu_ms_per_request"] = round(
                        (_server_cpu(server.pid) - cpu0) / max(1, row.get("requests_per_s", 0) * seconds) * 1000, 2)
                    rows.append(row)
                    print(f"http {name} {stream} c={c}: {rows[-1]}", file=sys.stderr, flush=True)
                out[f"{name}_{stream}"] = rows
        return out
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def _parse_wrk(text: str) -> dict:
    def ms(value: str) -> float:
        units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
        for unit in ("us", "ms", "s"):
            if value.endswith(unit):
                return round(float(value[: -len(unit)]) * units[unit], 3)
        return float("nan")

    out = {}
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            out["requests_per_s"] = round(float(parts[1]))
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            out[f"p{parts[0][:-1]}_ms"] = ms(parts[1])
        elif "Non-2xx" in line:
            out["non_2xx"] = int(parts[-1])
        elif line.strip().startswith("Socket errors"):
            out["socket_errors"] = line.split(":", 1)[1].strip()
    return out


# ---- the parent: runs each step in its own process -------------------------------------------------------------
def run_step(args: list[str], options: list[str]) -> dict:
    proc = subprocess.Popen([sys.executable, str(HERE), *options, "--step", *args], stdout=subprocess.PIPE,
                            text=True)
    text = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"step {args[0]} failed (status {status})")
    result = json.loads(text.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024)
    print(f"{args[0]} {' '.join(args[3:])}: {result}", file=sys.stderr, flush=True)
    return result


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--kinds", default="exact,binary,ivfpq,hnsw")
    ap.add_argument("--http-kind", default="hnsw", help="the index served over HTTP (the last one built)")
    ap.add_argument("--boards-per-item", type=int, default=10, help="board memberships per item (10M at 1M items)")
    ap.add_argument("--workers", default="", help="viscover serve --workers (default: the serve_workers setting)")
    ap.add_argument("--http-seconds", type=float, default=15.0)
    ap.add_argument("--connections", default="1,4,16,64")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--dir", type=Path, help="work folder (default: a temporary one, removed at the end)")
    ap.add_argument("--resume", action="store_true",
                    help="with --dir: reuse the results of steps already run there (their outputs are kept)")
    ap.add_argument("--json")
    ap.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        name, work, home = args.step[0], Path(args.step[1]), Path(args.step[2])
        kind = args.step[3] if len(args.step) > 3 else ""
        result = {"generate": lambda: step_generate(work, args.items, args.dim, args.queries, args.seed,
                                                    args.boards_per_item),
                  "ingest": lambda: step_ingest(work, home),
                  "import": lambda: step_import(work, home, args.dim),
                  "index": lambda: step_index(home, kind),
                  "search": lambda: step_search(work, home, kind),
                  "raw": lambda: step_raw(work, kind, args.items, args.dim)}[name]()
        print(json.dumps(result))
        return result
    own = args.dir is None
    work = Path(tempfile.mkdtemp(prefix="viscover-million-")) if own else args.dir
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    common = ["--items", str(args.items), "--dim", str(args.dim), "--queries", str(args.queries),
              "--seed", str(args.seed), "--boards-per-item", str(args.boards_per_item)]

    def step(name: str, *kind: str) -> dict:
        saved = work / "steps" / f"{'-'.join([name, *kind])}.json"
        served_elsewhere = name == "index" and kind == (args.http_kind,) and home_kind(home) != args.http_kind
        if args.resume and saved.is_file() and not served_elsewhere:  # an earlier run's step (outputs kept)
            print(f"{name} {' '.join(kind)}: reused {saved}", file=sys.stderr, flush=True)
            return json.loads(saved.read_text())
        out = run_step([name, str(work), str(home), *kind], common)
        saved.parent.mkdir(exist_ok=True)
        saved.write_text(json.dumps(out))
        return out

    try:
        result: dict = {"benchmark": "million", "items": args.items, "dim": args.dim, "model": MODEL}
        result["generate"] = step("generate")
        result["ingest"] = step("ingest")
        result["import_vectors"] = step("import")
        kinds = [k for k in args.kinds.split(",") if k and k != args.http_kind] + [args.http_kind]
        result["kinds"] = {}
        for kind in kinds:
            result["kinds"][kind] = {"index": step("index", kind), "search": step("search", kind),
                                     "raw_faiss": step("raw", kind)}
        result["http"] = {"kind": args.http_kind,
                          **http(home, work, args.http_seconds, [int(c) for c in args.connections.split(",")],
                                 args.items, args.workers)}
        disk = sum(p.stat().st_size for p in home.rglob("*") if p.is_file())
        result["home_disk_bytes_per_item"] = round(disk / args.items)
        result["environment"] = environment()
        emit(result, args.json)
        return result
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
