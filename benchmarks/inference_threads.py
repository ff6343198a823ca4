"""ONNX Runtime threads per query-time model under concurrent requests: which `inference_threads` default serves
more detections and searches by image per second on this machine.

The server runs up to `request_threads` requests at once (two per core), each calling its model's session; each
session run spreads over `inference_threads` threads (0: one per core). With several requests at once, more
threads per run only contend for the same cores. This measures it instead of assuming: for each setting
(--settings, default 1 and 0 = one per core) and each number of concurrent callers (--concurrency, default
1,2,4), Python threads call `Engine.detect` (CenterNet, when the detector is found) and `Engine.search_image`
(embedding + search) on photos from memory for --seconds each; settings alternate within each cell, so load from
elsewhere hits both alike; the median over --repeats is reported with every run in the JSON.

    python benchmarks/inference_threads.py [--seconds 8] [--repeats 2] [--concurrency 1,2,4] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, emit, environment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = Path(os.environ.get("VISCOVER_SHARED_MODELS", DATA.parent / "models")) / "centernet-coco.onnx"


def drive(call, photos: list[bytes], concurrency: int, seconds: float) -> dict:
    """`concurrency` threads call `call(photo)` back to back for `seconds`; throughput and latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    end = time.perf_counter() + seconds

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while (t0 := time.perf_counter()) < end:
            call(rng.choice(photos))
            with lock:
                latencies.append(time.perf_counter() - t0)

    cpu0 = time.process_time()
    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"calls": len(ms), "per_s": round(len(ms) / wall, 2), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "cpu_over_wall": round((time.process_time() - cpu0) / wall, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=ROOT / ".cache" / "bench-grocery-home")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument("--settings", default="1,0", help="inference_threads values to compare (0: one per core)")
    parser.add_argument("--json")
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    from viscover import Engine, Settings
    from viscover.catalog.store import Filters
    from viscover.serve.run import limit_threads

    limit_threads()  # as the server does
    base = Settings.load(args.home)
    with Engine(args.home, base) as engine:
        items, _ = engine.store.page_items(Filters(), 0, 100_000)
    photos = [Path(i.uri).read_bytes() for i in random.Random(0).sample(
        [i for i in items if i.domain == "photo" and i.split == "val"], 40)]
    detector = str(MODEL) if MODEL.is_file() else ""
    engines = {t: Engine(args.home, base.replace(inference_threads=t, detector=detector))
               for t in [int(x) for x in args.settings.split(",")]}
    tasks = {"search_by_image": lambda e: (lambda b: e.search_image(b, k=20))}
    if detector:
        tasks["detect"] = lambda e: (lambda b: e.detect(b))
    runs = []
    try:
        for e in engines.values():  # warm: sessions loaded
            for make in tasks.values():
                make(e)(photos[0])
        for repeat in range(args.repeats):
            for task, make in tasks.items():
                for c in [int(x) for x in args.concurrency.split(",")]:
                    for threads, e in engines.items():
                        row = {"task": task, "concurrency": c, "inference_threads": threads, "repeat": repeat,
                               **drive(make(e), photos, c, args.seconds)}
                        runs.append(row)
                        print(row, file=sys.stderr)
    finally:
        for e in engines.values():
            e.close()
    summary = []
    for key in sorted({(r["task"], r["concurrency"], r["inference_threads"]) for r in runs}):
        group = [r for r in runs if (r["task"], r["concurrency"], r["inference_threads"]) == key]
        summary.append({"task": key[0], "concurrency": key[1], "inference_threads": key[2],
                        **{f: round(statistics.median(r[f] for r in group), 2)
                           for f in ("per_s", "p50_ms", "p99_ms", "cpu_over_wall")}})
    emit({"benchmark": "inference_threads", "seconds_per_run": args.seconds, "repeats": args.repeats,
          "detector": detector or None, "summary": summary, "runs": runs,
          "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
          **environment()}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
