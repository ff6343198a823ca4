"""Requests/second and latency of the HTTP server under concurrent load, on the grocery catalogue.

Starts `viscover serve` on a loopback port, then drives it from an asyncio load generator (httpx) in this process:
search-by-id ("more like this") and search-by-upload (a photo as multipart), each at several concurrency levels for
a fixed time. Side by side, the same queries straight through the Python Engine (no HTTP) show what the server adds.
Both the server and the generator run on this machine's cores: the generator's CPU time is reported with each
result, since on 2 cores it takes its share from the server.

    python benchmarks/serve_load.py [--seconds 15] [--concurrency 1,4,16] [--home DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, emit, environment, free_port, start_server  # noqa: E402

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
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=ROOT / ".cache" / "bench-grocery-home")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--inference-threads", type=int, default=None,
                        help="the server's inference_threads setting (default: the setting's default)")
    parser.add_argument("--json")
    args = parser.parse_args()
    if not (DATA / "grocery" / "classes.csv").is_file():
        print(f"grocery data not found at {DATA}", file=sys.stderr)
        return 1
    build_home(args.home)
    from viscover import Engine, Settings
    from viscover.catalog.store import Filters

    with Engine(args.home, Settings.load(args.home)) as engine:
        items, total = engine.store.page_items(Filters(), 0, 100_000)
        photos = [i for i in items if i.domain == "photo" and i.split == "val"]
    rng = random.Random(0)
    ids = [i.key for i in items]
    uploads = [Path(i.uri).read_bytes() for i in rng.sample(photos, 50)]

    async def by_id(client, r):
        return await client.get("/api/search", params={"item": r.choice(ids), "k": 20})

    async def by_upload(client, r):
        return await client.post("/api/search", params={"k": 20}, files={"file": ("q.jpg", r.choice(uploads))})

    port = free_port()
    env = {} if args.inference_threads is None else {"VISCOVER_INFERENCE_THREADS": str(args.inference_threads)}
    server = start_server(args.home, port, "--no-auth", env=env)
    results = []
    try:
        for name, request in (("search_by_id", by_id), ("search_by_upload", by_upload)):
            for c in [int(x) for x in args.concurrency.split(",")]:
                cpu0, scpu0 = cpu_seconds(), cpu_seconds(server.pid)
                row = asyncio.run(drive(f"http://127.0.0.1:{port}", request, c, args.seconds, args.warmup))
                row.update(scenario=name, generator_cpu_s=round(cpu_seconds() - cpu0, 1),
                           server_cpu_s=round(cpu_seconds(server.pid) - scpu0, 1))
                results.append(row)
                print(f"{name} c={c}: {row['requests_per_s']} req/s p50 {row['latency_ms']['p50']} ms "
                      f"p99 {row['latency_ms']['p99']} ms errors {row['errors']}", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
    direct = in_process(args.home, ids, uploads, 200)
    emit({"benchmark": "serve_load", "catalogue": {"dataset": "grocery", "items": total},
          "seconds_per_run": args.seconds, "inference_threads": args.inference_threads, "http": results,
          "in_process_engine": direct,
          **environment({"server": "uvicorn, one process, FastAPI thread pool"})}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
