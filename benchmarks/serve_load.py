"""Requests/second and latency of the HTTP server under concurrent load, on the grocery catalogue.

Starts servers on loopback ports and drives them with `wrk` (Debian's, compiled: not the bottleneck; its own CPU
time is reported with each row) at several concurrency levels: search by id ("more like this") and related items
(on a copy of the home with boards: one per product plus 300 seeded mixed boards, 3 boards per item). Servers,
side by side in one run, rows interleaved: `viscover` (`viscover serve` as shipped), `viscover-wN` (the same with
`--workers N`, e.g. viscover-w1,viscover-w2), `baseline` (the same command on the code at --baseline-src, e.g. the
main branch's src) and `uvicorn-<loop>-<http>` variants (benchmarks/serve_variant.py) to measure the server choice.
Each server's CPU time per request (all its processes) is reported too: on 2 cores shared with other work, it moves
less than requests/s. With --upload, search by upload (a photo as
multipart) is driven by an asyncio httpx generator in this process (wrk cannot vary a multipart body cheaply).
The same queries straight through the Python Engine (no HTTP) show what the server adds.

    python benchmarks/serve_load.py [--seconds 10] [--concurrency 1,4,16,64] [--repeats 2]
        [--servers viscover,viscover-w1,viscover-w2,uvicorn-asyncio-h11] [--baseline-src ../main/src] [--upload]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, emit, environment, free_port, start_python, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def build_home(home: Path) -> None:
    """Ingest and index the whole grocery dataset into `home` (skipped when it is already indexed)."""
    from viscover import Engine, Settings
    from viscover.datasets import grocery_rows, write_manifest

    grocery = DATA / "grocery"
    settings = Settings.load(home)
    if "image_roots" in Settings.names():
        settings = settings.replace(image_roots=str(DATA))
    with Engine(home, settings) as engine:
        if (home / "index").is_dir():
            return
        manifest = home / "grocery.csv"
        write_manifest(grocery_rows(grocery), manifest)
        engine.ingest(manifest)
        engine.index()


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time of this process, or of process `pid` and every process below it (a server's workers)."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    stats = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            pass  # ended meanwhile
    tree, frontier = {pid}, {pid}
    while frontier:
        frontier = {p for p, fields in stats.items() if int(fields[1]) in frontier} - tree
        tree |= frontier
    return sum(int(stats[p][11]) + int(stats[p][12]) for p in tree if p in stats) / os.sysconf("SC_CLK_TCK")


async def drive(base: str, make_request, concurrency: int, seconds: float, warmup: float) -> dict:
    """`concurrency` workers send requests back to back for `seconds` (after `warmup`); latencies of the window."""
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        start = time.perf_counter()
        window = (start + warmup, start + warmup + seconds)

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            while (now := time.perf_counter()) < window[1]:
                t0 = now
                try:
                    response = await make_request(client, rng)
                    status = str(response.status_code) if response.status_code != 200 else None
                except httpx.HTTPError as e:
                    status = type(e).__name__
                t1 = time.perf_counter()
                if t0 >= window[0] and t1 <= window[1]:
                    if status:
                        errors[status] = errors.get(status, 0) + 1
                    else:
                        latencies.append(t1 - t0)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    ms = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": len(latencies), "errors": errors,
            "requests_per_s": round(len(latencies) / seconds, 1),
            "latency_ms": {"p50": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
                           "p90": round(float(np.percentile(ms, 90)), 2) if len(ms) else None,
                           "p99": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
                           "max": round(float(ms.max()), 2) if len(ms) else None}}


def in_process(home: Path, ids: list[str], uploads: list[bytes], n: int) -> dict:
    """The same queries through the Engine in this process, one at a time: the floor the server builds on."""
    from viscover import Engine, Settings
    from viscover.serve.run import limit_threads

    limit_threads()
    out = {}
    with Engine(home, Settings.load(home)) as engine:
        for name, call in (("search_by_id", lambda r: engine.search_item(r.choice(ids), k=20)),
                           ("search_by_upload", lambda r: engine.search_image(r.choice(uploads), k=20))):
            rng, times = random.Random(0), []
            call(rng)  # warm: model and index loaded
            for _ in range(n):
                t0 = time.perf_counter()
                call(rng)
                times.append((time.perf_counter() - t0) * 1000)
            out[name] = {"queries": n, "p50_ms": round(float(np.percentile(times, 50)), 2),
                         "p99_ms": round(float(np.percentile(times, 99)), 2),
                         "queries_per_s_one_thread": round(1000 / float(np.mean(times)), 1)}
    return out


def boards_home(home: Path, out: Path) -> Path:
    """A copy of the indexed grocery home whose items are on boards (made once): each item on its product's board
    and on 2 of 300 mixed boards (seeded), so that related items have a graph to walk."""
    if (out / "index").is_dir():
        return out
    import csv

    from viscover import Engine, Settings

    shutil.copytree(home, out, dirs_exist_ok=True)
    rows = list(csv.DictReader(open(home / "grocery.csv")))
    rng = random.Random(0)
    for row in rows:
        row["boards"] = ";".join([f"product-{row['label.product']}"] + [f"mix-{rng.randrange(300)}" for _ in range(2)])
    manifest = out / "grocery-boards.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    settings = Settings.load(out)
    if "image_roots" in Settings.names():
        settings = settings.replace(image_roots=str(DATA))
    with Engine(out, settings) as engine:
        engine.ingest(manifest)
    return out


# wrk's summary as one JSON line (run_wrk reads it); every wrk script here ends with it
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "socket_errors": %%d, "non2xx": %%d, '
    .. '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""

LUA = """
local paths = {%s}
init = function(args) math.randomseed(tonumber(args[1] or "1")) end
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
""" + WRK_DONE



def wrk_script(paths: list[str], folder: Path, name: str) -> Path:
    """A wrk Lua script requesting a random one of `paths` each time and printing its summary as JSON."""
    path = folder / f"{name}.lua"
    path.write_text(LUA % ",".join(json.dumps(p) for p in paths))
    return path


def run_wrk(base: str, script: Path, concurrency: int, seconds: float, server_pid: int) -> dict:
    """One wrk run: its JSON summary, its own CPU time and the server's CPU time per request."""
    threads = min(concurrency, 2)
    scpu0 = cpu_seconds(server_pid)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds:g}s", "-s", str(script), base,
                             "--", str(concurrency)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate()  # reaps wrk: its CPU time joins this process's children's
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    server_cpu = cpu_seconds(server_pid) - scpu0
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary: {out[-1000:]}")
    got = json.loads(line[len("WRKJSON "):])
    n, secs = got["requests"], got["duration_us"] / 1e6
    ok = n - got["non2xx"]
    return {"concurrency": concurrency, "requests": n, "errors": {"non2xx": got["non2xx"],
                                                                   "socket": got["socket_errors"]},
            "requests_per_s": round(ok / secs, 1),
            "latency_ms": {q: round(got[f"{q}_us"] / 1000, 2) for q in ("p50", "p90", "p99", "max")},
            "server_cpu_s": round(server_cpu, 2),
            "server_cpu_ms_per_request": round(server_cpu / max(n, 1) * 1000, 3),
            "wrk_threads": threads, "wrk_cpu_s": round(wrk_cpu, 2)}


def start_variant(name: str, home: Path, port: int, baseline_src: str | None):
    """Start server `name` on `home`: viscover, baseline or uvicorn-<loop>-<http>."""
    if name == "viscover":
        return start_server(home, port, "--no-auth")
    if name.startswith("viscover-w"):
        return start_server(home, port, "--no-auth", "--workers", name[len("viscover-w"):])
    if name == "baseline":
        env = {"PYTHONPATH": baseline_src or ""}
        return start_server(home, port, "--no-auth", env=env)
    _, loop, http = name.split("-")
    return start_python([str(Path(__file__).with_name("serve_variant.py")), "--home", str(home), "--port",
                         str(port), "--loop", loop, "--http", http], port)


def summarise(rows: list[dict]) -> list[dict]:
    """Median requests/s, p50 and p99 (and server CPU per request) over the repeats of each server, scenario and
    concurrency."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["server"], r["scenario"], r["concurrency"]), []).append(r)
    out = []
    for (server, scenario, c), runs in groups.items():
        def med(f, runs=runs) -> float:
            return round(statistics.median(f(r) for r in runs), 2)

        out.append({"server": server, "scenario": scenario, "concurrency": c, "runs": len(runs),
                    "requests_per_s": med(lambda r: r["requests_per_s"]),
                    "p50_ms": med(lambda r: r["latency_ms"]["p50"]), "p99_ms": med(lambda r: r["latency_ms"]["p99"]),
                    "server_cpu_ms_per_request": med(lambda r: r["server_cpu_ms_per_request"]),
                    "errors": sum(r["errors"]["non2xx"] + r["errors"]["socket"] for r in runs)})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=ROOT / ".cache" / "bench-grocery-home")
    parser.add_argument("--boards-home", type=Path, default=None,
                        help="the copy of --home with boards (default: --home's name + '-boards', made once)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--scenarios", default="search_by_id,related")
    parser.add_argument("--servers", default="viscover")
    parser.add_argument("--baseline-src", default=None, help="src folder of the code the 'baseline' server runs")
    parser.add_argument("--upload", action="store_true", help="also search by upload (httpx generator)")
    parser.add_argument("--inference-threads", type=int, default=None,
                        help="the server's inference_threads setting (default: the setting's default)")
    parser.add_argument("--json")
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    if not (DATA / "grocery" / "classes.csv").is_file():
        print(f"grocery data not found at {DATA}", file=sys.stderr)
        return 1
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 1
    build_home(args.home)
    related_home = boards_home(args.home, args.boards_home or args.home.with_name(args.home.name + "-boards"))
    from viscover import Engine, Settings
    from viscover.catalog.store import Filters

    with Engine(args.home, Settings.load(args.home)) as engine:
        items, total = engine.store.page_items(Filters(), 0, 100_000)
        photos = [i for i in items if i.domain == "photo" and i.split == "val"]
    rng = random.Random(0)
    ids = [i.key for i in items]
    uploads = [Path(i.uri).read_bytes() for i in rng.sample(photos, 50)]
    scripts_dir = Path(tempfile.mkdtemp(prefix="serve-load-"))
    scripts = {"search_by_id": wrk_script([f"/api/search?k=20&item={quote(k, safe='')}" for k in ids],
                                          scripts_dir, "search_by_id"),
               "related": wrk_script([f"/api/related?k=20&item={quote(k, safe='')}" for k in ids],
                                     scripts_dir, "related")}
    homes = {"search_by_id": args.home, "related": related_home}
    scenarios = [s for s in args.scenarios.split(",") if s]
    servers = [s for s in args.servers.split(",") if s]
    concurrency = [int(x) for x in args.concurrency.split(",")]
    env = {} if args.inference_threads is None else {"VISCOVER_INFERENCE_THREADS": str(args.inference_threads)}
    os.environ.update(env)
    results: list[dict] = []
    for scenario in scenarios:
        running = {}
        try:
            for name in servers:
                port = free_port()
                running[name] = (start_variant(name, homes[scenario], port, args.baseline_src), port)
            for proc, port in running.values():  # warm: caches, graph, index loaded
                run_wrk(f"http://127.0.0.1:{port}", scripts[scenario], 4, args.warmup, proc.pid)
            for repeat in range(args.repeats):
                for c in concurrency:
                    for name, (proc, port) in running.items():  # interleaved: load from elsewhere hits all alike
                        row = run_wrk(f"http://127.0.0.1:{port}", scripts[scenario], c, args.seconds, proc.pid)
                        row.update(server=name, scenario=scenario, repeat=repeat)
                        results.append(row)
                        print(f"{name} {scenario} c={c}: {row['requests_per_s']} req/s p50 "
                              f"{row['latency_ms']['p50']} ms p99 {row['latency_ms']['p99']} ms, server "
                              f"{row['server_cpu_ms_per_request']} ms CPU/request, errors {row['errors']}",
                              file=sys.stderr)
        finally:
            for proc, _ in running.values():
                proc.terminate()
                proc.wait(timeout=30)
    upload_rows = []
    if args.upload:
        async def by_upload(client, r):
            return await client.post("/api/search", params={"k": 20}, files={"file": ("q.jpg", r.choice(uploads))})

        port = free_port()
        server = start_server(args.home, port, "--no-auth", env=env)
        try:
            for c in concurrency:
                cpu0, scpu0 = cpu_seconds(), cpu_seconds(server.pid)
                row = asyncio.run(drive(f"http://127.0.0.1:{port}", by_upload, c, args.seconds, args.warmup))
                row.update(scenario="search_by_upload", server="viscover",
                           generator_cpu_s=round(cpu_seconds() - cpu0, 1),
                           server_cpu_s=round(cpu_seconds(server.pid) - scpu0, 1))
                upload_rows.append(row)
        finally:
            server.terminate()
            server.wait(timeout=30)
    direct = in_process(args.home, ids, uploads, 200)
    emit({"benchmark": "serve_load", "catalogue": {"dataset": "grocery", "items": total,
                                                   "related_boards": "product + 2 of 300 mixed per item"},
          "load_generator": "wrk", "seconds_per_run": args.seconds, "repeats": args.repeats,
          "inference_threads": args.inference_threads, "servers": servers, "baseline_src": args.baseline_src,
          "summary": summarise(results), "http": results, "http_upload": upload_rows,
          "in_process_engine": direct,
          "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
          **environment({"server": "uvicorn (viscover-wN: N worker processes), FastAPI thread pool"})}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
