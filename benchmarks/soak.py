"""Soak: searches keep answering, without errors, while items are added, removed and the index is rebuilt.

Starts `viscover serve` on a copy of a catalogue home. Search threads send search-by-item, search-by-upload,
related-items and catalogue-page requests back to back. Meanwhile a writer adds items over the API (ingest +
embed + index job), checks each is searchable, deletes them again, and every few rounds runs
`viscover index --rebuild` in a separate process (the server notices the new index and swaps it in). Every
non-200 answer to a search is an error; the run reports errors (must be 0) and latency percentiles.

    python benchmarks/soak.py [--seconds 120] [--searchers 4] [--home DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, emit, environment, free_port, start_server  # noqa: E402

KEY = "soak-key"


def run_soak(home: Path, new_images: list[Path], *, seconds: float, searchers: int = 4, seed: int = 0,
             rebuild_every: int = 3) -> dict:
    """Soak a server on `home` (changed by the run: pass a copy). `new_images` are added and removed in turn."""
    import httpx

    from viscover import Engine, Settings
    from viscover.catalog.store import Filters

    with Engine(home, Settings.load(home)) as engine:
        items, _ = engine.store.page_items(Filters(), 0, 100_000)
        with_boards = [i.key for i in items if i.boards]
    stable = [i.key for i in items]
    uploads = [Path(i.uri).read_bytes() for i in random.Random(seed).sample(items, min(20, len(items)))]
    port = free_port()
    server = start_server(home, port, "--api-key", KEY, env={"VISCOVER_IMAGE_ROOTS": str(DATA)})
    base = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    latencies: dict[str, list[float]] = {"search_by_id": [], "search_by_upload": [], "related": [], "items": []}
    errors: list[str] = []
    counts = {"rounds": 0, "items_added": 0, "items_removed": 0, "rebuilds": 0, "not_searchable_after_add": 0,
              "still_listed_after_delete": 0, "write_failures": 0}

    def search_loop(worker: int) -> None:
        rng = random.Random(seed * 1000 + worker)
        with httpx.Client(base_url=base, timeout=60) as client:
            while not stop.is_set():
                kind = rng.choice(["search_by_id", "search_by_id", "search_by_upload", "related", "items"])
                if kind == "related" and not with_boards:
                    kind = "search_by_id"
                t0 = time.perf_counter()
                try:
                    if kind == "search_by_id":
                        r = client.get("/api/search", params={"item": rng.choice(stable), "k": 20})
                    elif kind == "search_by_upload":
                        r = client.post("/api/search", params={"k": 20}, files={"file": ("q.jpg", rng.choice(uploads))})
                    elif kind == "related":
                        r = client.get("/api/related", params={"item": rng.choice(with_boards), "k": 20})
                    else:
                        r = client.get("/api/items", params={"offset": rng.randrange(len(stable)), "limit": 50})
                    ok = r.status_code == 200
                    what = f"{kind}: HTTP {r.status_code} {r.text[:200]}"
                except httpx.HTTPError as e:
                    ok, what = False, f"{kind}: {type(e).__name__}: {e}"
                if ok:
                    latencies[kind].append(time.perf_counter() - t0)
                else:
                    errors.append(what)

    def wait(client, job: dict) -> dict:
        while True:
            body = client.get(f"/api/jobs/{job['id']}").json()
            if body["state"] in ("done", "failed"):
                return body
            time.sleep(0.05)

    def write_loop() -> None:
        rng = random.Random(seed)
        rebuild: subprocess.Popen | None = None
        with httpx.Client(base_url=base, timeout=120, headers={"X-API-Key": KEY}) as client:
            while not stop.is_set():
                n = counts["rounds"]
                picked = rng.sample(new_images, min(4, len(new_images)))
                rows = [{"id": f"soak-{n}-{i}", "path": str(p), "title": "soak"} for i, p in enumerate(picked)]
                added = wait(client, client.post("/api/items", json={"items": rows}).json()["job"])
                if added["state"] != "done":
                    counts["write_failures"] += 1
                    errors.append(f"ingest job failed: {added['error']}")
                    continue
                counts["items_added"] += added["result"]["ingest"]["added"]
                for row in rows:
                    if client.get("/api/search", params={"item": row["id"], "k": 1}).status_code != 200:
                        counts["not_searchable_after_add"] += 1
                if rebuild is None and n % rebuild_every == rebuild_every - 1:
                    rebuild = subprocess.Popen([sys.executable, "-m", "viscover.cli.app", "index", "--rebuild",
                                                "--home", str(home)], stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL)
                removed = wait(client, client.post("/api/items/delete", json={"ids": [r["id"] for r in rows]})
                               .json()["job"])
                counts["items_removed"] += (removed.get("result") or {}).get("removed", 0)
                for row in rows:
                    if client.get(f"/api/items/{row['id']}").status_code != 404:
                        counts["still_listed_after_delete"] += 1
                if rebuild is not None and rebuild.poll() is not None:
                    counts["rebuilds"] += rebuild.returncode == 0
                    counts["write_failures"] += rebuild.returncode != 0
                    rebuild = None
                counts["rounds"] += 1
            if rebuild is not None:
                counts["rebuilds"] += rebuild.wait() == 0

    threads = [threading.Thread(target=search_loop, args=(w,)) for w in range(searchers)]
    threads.append(threading.Thread(target=write_loop))
    start = time.perf_counter()
    try:
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(timeout=300)
    finally:
        server.terminate()
        server.wait(timeout=30)
    server_log = ""
    if errors:  # the server's traceback says why
        server.log.seek(0)
        server_log = server.log.read().decode(errors="replace")[-4000:]
    elapsed = time.perf_counter() - start
    stats = {}
    for kind, values in latencies.items():
        ms = np.array(values) * 1000
        stats[kind] = {"requests": len(ms), **({f"p{q}_ms": round(float(np.percentile(ms, q)), 2)
                                                 for q in (50, 90, 99)} if len(ms) else {})}
    total = sum(len(v) for v in latencies.values())
    return {"seconds": round(elapsed, 1), "searchers": searchers, "requests": total, "errors": len(errors),
            "error_examples": errors[:5], "server_log": server_log, "requests_per_s": round(total / elapsed, 1),
            "latency": stats, **counts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(__file__).resolve().parents[1] / ".cache" /
                        "bench-grocery-home", help="an indexed home (copied, not changed); built by serve_load.py")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--searchers", type=int, default=4)
    parser.add_argument("--json")
    args = parser.parse_args()
    from serve_load import build_home

    build_home(args.home)
    new_images = sorted((DATA / "clothing" / "images").glob("*.jpg"))[:200]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        shutil.copytree(args.home, home)
        result = run_soak(home, new_images, seconds=args.seconds, searchers=args.searchers)
    emit({"benchmark": "soak", **result, **environment()}, args.json)
    return 0 if result["errors"] == 0 and result["write_failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
