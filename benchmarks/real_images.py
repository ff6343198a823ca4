"""Real images end to end (issue 13): N JPEG files made from the shared grocery and clothing photos (each source
photo plus seeded augmentations of it) ingested, embedded and indexed with the `viscover` CLI as a user runs it,
against raw decode + ONNX Runtime on the same images; then the built catalogue served over HTTP on loopback and
searched by upload, by id and for related items at several concurrencies.

Steps, all in one run:
1. Images: sources are the grocery train photos, the grocery catalogue (iconic) images and the clothing photos of
   the train contributors (viscover.datasets' fixed split); image i comes from source i mod S, the first S being
   the source files themselves (copied byte for byte), the others seeded augmentations (random resized crop to a
   shorter side of 240-420 px, horizontal flip, rotation within 12 degrees, brightness, contrast and saturation
   jitter, JPEG quality 60-95; PIL + numpy), written under DIR/images with DIR/manifest.csv (path, labels of the
   source, domain, boards: the clothing contributor or the grocery product). Not part of viscover's time.
2. viscover: `viscover ingest manifest.csv --home H --json` then `viscover index --home H --json` (default model
   efficientnet-lite0, default settings), each a subprocess: wall and CPU time (os.wait4), peak RSS of the
   largest process (ru_maxrss) and of the whole process tree (its workers included, sampled every 0.2 s), the
   index kind chosen, disk per item.
3. Raw reference on a seeded sample of --raw-sample images (10,000 by default) of the same files: PIL decode
   (JPEG draft mode, as viscover does) + central square + box resize to 224 + ONNX Runtime on viscover's own ONNX
   file, in a few layouts (worker processes x threads, batch sizes), all run before step 2; the best one runs again
   right after step 2 and the reference is the mean of the two, so that load from elsewhere that comes or goes
   during viscover's run weighs on both sides. Timed from when every session is loaded and warm, so start-up is
   not counted for raw (it is for viscover).
4. Served: first, with nothing else running, what embedding alone allows: decode + ONNX Runtime of the query
   photos from memory, one image per call, one ONNX thread per caller (the server's setting), one caller per
   core (and one caller alone). Then `viscover serve --home H --no-auth` (default workers) and, for each of 1, 4,
   16 and 64 concurrent clients: POST /api/search with real photo bytes (--queries distinct photos from the
   grocery and clothing val splits, none of them a catalogue source) driven by wrk with the multipart bodies
   built once per thread in Lua (compiled, cheap: its CPU is reported), the same with serve_load.py's asyncio
   httpx generator (its CPU too), GET /api/search?item= and GET /api/related?item= with wrk. Then the same
   upload searches through the Engine in one thread (no HTTP), timed by part (decode, embed, the rest), and
   embedding alone once more: its reference is the mean of before and after.
The machine is shared: every stage records the CPU that processes other than this benchmark's took meanwhile
(other_processes_cores, from /proc/stat less this process tree's own CPU), so that a figure taken while other work
held a core can be told from one taken on a quiet machine.

    .venv/bin/python benchmarks/real_images.py --dir /work/real100k --json benchmarks/results/real_images.json
    .venv/bin/python benchmarks/real_images.py --images 2000 --raw-sample 1000 --seconds 4   # a quick check
    .venv/bin/python benchmarks/real_images.py --dir /work/real100k --raw-only --json \
        benchmarks/results/real_images_raw_check.json   # the raw layouts again, on the same sample

--dir keeps the work folder (images, manifest, home) and reuses images made with the same --images and --seed;
without it a temporary folder is used and removed. Needs `wrk` (Debian package) for the HTTP part.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import multiprocessing as mp
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, emit, environment, free_port, start_server  # noqa: E402

SIDE = 224  # efficientnet-lite0's input side (checked against the model's model.json)


# ---- 1. images ------------------------------------------------------------------------------------------------
def sources_and_queries(queries: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Catalogue sources (grocery train + catalogue images, clothing train contributors) and a seeded sample of
    query photos from the val splits (grocery val, clothing held-out contributors): never a catalogue source."""
    from viscover.datasets import clothing_rows, grocery_rows

    rows = list(grocery_rows(DATA / "grocery")) + list(clothing_rows(DATA / "clothing"))
    sources = [r for r in rows if r["split"] != "val"]
    val = [r for r in rows if r["split"] == "val"]
    picked = random.Random(seed).sample(val, min(queries, len(val)))
    return sources, picked


def augment(img, rng: np.random.Generator):
    """A seeded augmentation of an RGB image: random resized crop, flip, small rotation, colour jitter."""
    from PIL import Image, ImageEnhance

    w, h = img.size
    area = w * h * rng.uniform(0.45, 1.0)
    ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    cw, ch = min(w, round(math.sqrt(area * ratio))), min(h, round(math.sqrt(area / ratio)))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = img.crop((x, y, x + cw, y + ch))
    scale = rng.uniform(240, 420) / min(cw, ch)
    img = img.resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    fill = tuple(int(v) for v in np.asarray(img).reshape(-1, 3).mean(axis=0))
    img = img.rotate(rng.uniform(-12, 12), resample=Image.Resampling.BILINEAR, fillcolor=fill)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enhancer(img).enhance(rng.uniform(0.75, 1.25))
    return img


def _make_group(task: tuple[dict, list[int], str, int]) -> list[dict]:
    """Write every image of one source (the source itself for i < S, augmentations otherwise)."""
    from PIL import Image

    source, numbers, out, seed = task
    out_dir = Path(out)
    rows, img = [], None
    for n in numbers:
        rel = f"images/{n // 1000:03d}/{n:06d}.jpg"
        path = out_dir / rel
        if n == source["_number"]:  # the first image of each source is the source file itself
            shutil.copyfile(source["path"], path)
        else:
            if img is None:
                with Image.open(source["path"]) as f:
                    img = f.convert("RGB")
            rng = np.random.default_rng([seed, n])
            augment(img, rng).save(path, "JPEG", quality=int(rng.integers(60, 96)))
        row = {"path": rel, "domain": source["domain"], "label.category": source.get("label.category", ""),
               "label.product": source.get("label.product", ""), "description": f"from {source['id']}"}
        row["boards"] = source.get("boards") or f"product-{source['label.product']}"
        rows.append(row)
    return rows


def generate(work: Path, n: int, seed: int, queries: int) -> dict:
    sources, _ = sources_and_queries(queries, seed)
    count = len(sources)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(i % count, []).append(i)
    for d in range((n - 1) // 1000 + 1):
        (work / "images" / f"{d:03d}").mkdir(parents=True, exist_ok=True)
    tasks = [({**sources[s], "_number": s}, numbers, str(work), seed) for s, numbers in groups.items()]
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(os.cpu_count() or 1) as pool:
        made = pool.map(_make_group, tasks, chunksize=8)
    seconds = time.perf_counter() - start
    rows = sorted((r for group in made for r in group), key=lambda r: r["path"])
    with open(work / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "domain", "label.category", "label.product", "boards",
                                               "description"])
        writer.writeheader()
        writer.writerows(rows)
    size = sum((work / r["path"]).stat().st_size for r in rows)
    info = {"images": n, "seed": seed, "sources": count, "originals": min(n, count), "augmented": max(0, n - count),
            "seconds": round(seconds, 1), "images_per_s": round(n / seconds, 1), "processes": os.cpu_count() or 1,
            "bytes_per_image": round(size / n), "domains": {d: sum(r["domain"] == d for r in rows)
                                                           for d in ("photo", "catalog")}}
    (work / "generated.json").write_text(json.dumps(info))
    return info


# ---- 2. viscover, the CLI as a user runs it --------------------------------------------------------------------
def tree_rss(pid: int) -> int:
    """Resident bytes of process `pid` and every process below it."""
    parents, rss = {}, {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
                rss[int(entry.name)] = int(fields[21]) * page
            except (OSError, IndexError, ValueError):
                pass
    tree, frontier = {pid}, {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - tree
        tree |= frontier
    return sum(rss.get(p, 0) for p in tree)


def run_cli(argv: list[str], log: Path) -> dict:
    """Run one viscover command: its JSON output, wall and CPU seconds, peak RSS (largest process; whole tree)."""
    viscover = Path(sys.executable).parent / "viscover"
    peak = [0]
    with open(log, "w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(viscover), *argv], stdout=subprocess.PIPE, stderr=err, text=True)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                peak[0] = max(peak[0], tree_rss(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    if status != 0:
        raise SystemExit(f"viscover {' '.join(argv)} failed (status {status}); see {log}")
    return {"command": "viscover " + " ".join(argv), "seconds": round(seconds, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024),
            "peak_tree_rss_mb": round(peak[0] / 2**20), "report": json.loads(out)}


def disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class Others:
    """CPU that processes other than this one and its children used while a stage ran, in cores (the machine is
    shared: a figure taken while something else held a core is not comparable with one taken on a quiet machine).
    Busy time of the whole machine comes from /proc/stat, this process tree's own from getrusage."""

    def __init__(self) -> None:
        self.start = (self._busy(), self._own(), time.perf_counter())

    @staticmethod
    def _busy() -> float:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait

    @staticmethod
    def _own() -> float:
        import resource

        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def cores(self, own_extra: float = 0.0) -> float:
        """Average cores used by others since the start; `own_extra`: CPU of this tree's processes not yet reaped
        (a running server)."""
        busy, own, wall = self._busy(), self._own(), time.perf_counter()
        return round(max(0.0, (busy - self.start[0]) - (own - self.start[1]) - own_extra) / (wall - self.start[2]), 2)


def viscover_end_to_end(work: Path, home: Path, n: int) -> dict:
    shutil.rmtree(home, ignore_errors=True)
    others = Others()
    ingest = run_cli(["ingest", str(work / "manifest.csv"), "--home", str(home), "--json"], work / "ingest.log")
    ingest["other_processes_cores"] = others.cores()
    others = Others()
    index = run_cli(["index", "--home", str(home), "--json"], work / "index.log")
    index["other_processes_cores"] = others.cores()
    report = ingest["report"][0] if isinstance(ingest["report"], list) else ingest["report"]
    ingest["report"] = {k: report.get(k) for k in ("rows", "counts", "skipped_total") if k in report}
    index["report"] = {k: v for k, v in index["report"].items() if k != "problems"}
    total = ingest["seconds"] + index["seconds"]
    embedded = index["report"]["embedded"]
    parts = {name: disk(home / name) for name in ("embeddings", "index") if (home / name).is_dir()}
    parts["catalog.sqlite"] = sum(p.stat().st_size for p in home.glob("catalog.sqlite*"))
    return {"ingest": ingest, "index": index, "total_seconds": round(total, 1),
            "images_per_s": round(embedded / total, 1),
            "index_images_per_s": round(embedded / index["seconds"], 1),
            "index_kind": index["report"]["kind"], "home_disk_bytes_per_item": round(disk(home) / n),
            "disk_bytes_per_item_by_part": {k: round(v / n) for k, v in parts.items()}}


# ---- 3. raw decode + ONNX Runtime -------------------------------------------------------------------------------
def raw_pixels(source) -> np.ndarray:
    """A file path or bytes -> (224, 224, 3) uint8: what the model takes, with PIL alone."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        img.draft("RGB", (SIDE, SIDE))
        img = img.convert("RGB")
        w, h = img.size
        s = min(w, h)
        box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
        resample = Image.Resampling.BOX if s >= SIDE else Image.Resampling.BILINEAR
        return np.asarray(img.resize((SIDE, SIDE), resample, box=box), dtype=np.uint8)


def session(model: str, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    return sess, sess.get_inputs()[0].name


def _raw_worker(model: str, paths: list[str], threads: int, batch: int, decoders: int, barrier, results) -> None:
    """One raw process: decode its `paths` (in `decoders` threads, batches prefetched, when > 0) and run them
    through ONNX Runtime in batches of `batch`, after a warm-up; puts the number of images done."""
    sess, name = session(model, threads)
    sess.run(None, {name: np.zeros((batch, SIDE, SIDE, 3), np.uint8)})
    chunks = [paths[i:i + batch] for i in range(0, len(paths), batch)]
    barrier.wait()
    if decoders:
        with ThreadPoolExecutor(decoders) as pool:
            ahead: deque = deque()
            it = iter(chunks)
            for chunk in it:
                ahead.append(pool.submit(lambda c: np.stack([raw_pixels(p) for p in c]), chunk))
                if len(ahead) >= 4 * decoders:
                    break
            while ahead:
                pixels = ahead.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    ahead.append(pool.submit(lambda c: np.stack([raw_pixels(p) for p in c]), nxt))
                sess.run(None, {name: pixels})
    else:
        for chunk in chunks:
            sess.run(None, {name: np.stack([raw_pixels(p) for p in chunk])})
    results.put(len(paths))


def raw_run(model: str, paths: list[str], processes: int, threads: int, batch: int, decoders: int) -> float:
    """Images/s of `processes` raw processes over `paths` (split evenly), timed from all of them being ready."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_raw_worker, args=(model, paths[i::processes], threads, batch, decoders, barrier,
                                                   results)) for i in range(processes)]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    done = sum(results.get() for _ in procs)
    seconds = time.perf_counter() - start
    for p in procs:
        p.join()
    return done / seconds


RAW_LAYOUTS = [  # (processes, ONNX threads each, batch, decode threads per process: 0 = decode in line)
    (2, 1, 4, 0), (2, 1, 8, 0), (2, 1, 1, 0), (1, 2, 16, 2)]


def layout_name(procs: int, threads: int, batch: int, decoders: int) -> str:
    return f"{procs}proc x {threads}thr, batch {batch}, " + (f"{decoders} decode threads" if decoders
                                                             else "decode in line")


def raw_reference(model: str, paths: list[str], repeats: int) -> dict:
    """Every layout (median of `repeats`); the best is the reference."""
    others = Others()
    runs: dict[str, list[float]] = {}
    for _ in range(repeats):
        for layout in RAW_LAYOUTS:
            name = layout_name(*layout)
            runs.setdefault(name, []).append(raw_run(model, paths, *layout))
            print(f"raw {name}: {runs[name][-1]:.1f} images/s", file=sys.stderr, flush=True)
    med = {k: round(statistics.median(v), 1) for k, v in runs.items()}
    best = max(med, key=med.get)
    return {"images": len(paths), "repeats": repeats, "images_per_s_by_layout": med, "best_layout": best,
            "best_layout_args": list(RAW_LAYOUTS[[layout_name(*x) for x in RAW_LAYOUTS].index(best)]),
            "images_per_s": med[best], "other_processes_cores": others.cores()}


def raw_again(model: str, paths: list[str], before: dict) -> dict:
    """The best layout once more, right after viscover's run: the reference is the mean of before and after, so
    that load from elsewhere that came or went during viscover's run shows and weighs on both sides alike."""
    others = Others()
    after = round(raw_run(model, paths, *before["best_layout_args"]), 1)
    print(f"raw {before['best_layout']} again: {after} images/s", file=sys.stderr, flush=True)
    return {**before, "before": {"images_per_s": before["images_per_s"],
                                 "other_processes_cores": before["other_processes_cores"]},
            "after": {"images_per_s": after, "other_processes_cores": others.cores()},
            "images_per_s": round((before["images_per_s"] + after) / 2, 1),
            "note": "images_per_s: mean of the best layout before (all layouts tried) and after viscover's run"}


# ---- 4. served -------------------------------------------------------------------------------------------------
def _embed_alone_worker(model: str, photos: list[bytes], seconds: float, seed: int, barrier, results) -> None:
    sess, name = session(model, 1)
    sess.run(None, {name: raw_pixels(photos[0])[None]})
    rng = random.Random(seed)
    barrier.wait()
    end, count = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        sess.run(None, {name: raw_pixels(rng.choice(photos))[None]})
        count += 1
    results.put(count)


def embed_alone(model: str, photos: list[bytes], callers: int, seconds: float) -> float:
    """Images/s of `callers` processes each decoding a query photo from memory and embedding it alone (batch 1,
    one ONNX thread): what the cores allow for upload searches when nothing but embedding runs."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(callers + 1), ctx.Queue()
    procs = [ctx.Process(target=_embed_alone_worker, args=(model, photos, seconds, i, barrier, results))
             for i in range(callers)]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    done = sum(results.get() for _ in procs)
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join()
    return done / elapsed


UPLOAD_LUA = """
local files = {%s}
local requests = {}
init = function(args)
  math.randomseed(tonumber(args[1] or "1"))
  local boundary = "viscoverbench7d3f"
  for i, name in ipairs(files) do
    local f = assert(io.open(name, "rb"))
    local data = f:read("*a")
    f:close()
    local body = "--" .. boundary .. "\\r\\n"
      .. 'Content-Disposition: form-data; name="file"; filename="q.jpg"\\r\\n'
      .. "Content-Type: image/jpeg\\r\\n\\r\\n" .. data .. "\\r\\n--" .. boundary .. "--\\r\\n"
    requests[i] = wrk.format("POST", "/api/search?k=20",
      {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, body)
  end
end
request = function() return requests[math.random(#requests)] end
"""


def _breakdown_worker(home: str, query_paths: list[str], results) -> None:
    from viscover import Engine, Settings
    from viscover.embed.pipeline import decode_pixels
    from viscover.serve.run import limit_threads, serving_settings

    limit_threads()
    photos = [Path(p).read_bytes() for p in query_paths]
    with Engine(home, serving_settings(Settings.load(Path(home)))) as engine:
        embedder = engine.embedder()
        for data in photos[:20]:
            engine.search_image(data, k=20)  # warm: model, index, item cache
        decode, embed, total = [], [], []
        for data in photos:
            t0 = time.perf_counter()
            pixels = decode_pixels(data, embedder.spec, engine.settings, name="q")
            t1 = time.perf_counter()
            embedder.embed(pixels[None])
            t2 = time.perf_counter()
            engine.search_image(data, k=20)
            total.append(time.perf_counter() - t2)
            decode.append(t1 - t0)
            embed.append(t2 - t1)
    ms = {name: 1000 * float(np.mean(v)) for name, v in (("decode", decode), ("embed", embed), ("total", total))}
    results.put({"queries": len(photos), "decode_resize_ms": round(ms["decode"], 2), "embed_ms": round(ms["embed"], 2),
                 "search_image_ms": round(ms["total"], 2),
                 "search_and_rest_ms": round(ms["total"] - ms["decode"] - ms["embed"], 2),
                 "embedding_share": round((ms["decode"] + ms["embed"]) / ms["total"], 3),
                 "note": "one thread, the server's settings (one ONNX thread); means over the query photos; "
                         "search_and_rest = search_image - decode - embed (index search, collapse, metadata)"})


def in_process_breakdown(home: Path, query_paths: list[str]) -> dict:
    """Where one upload search's time goes, through the Engine with no HTTP (in a child process, so that its
    thread limits stay there)."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_breakdown_worker, args=(str(home), query_paths, results))
    proc.start()
    while True:
        try:
            out = results.get(timeout=5)
            break
        except queue.Empty:
            if not proc.is_alive():
                return {"failed": f"exit status {proc.exitcode}"}
    proc.join()
    return out


def warm(base: str, path: str, requests: int = 8) -> None:
    """`requests` concurrent requests for `path`, each waited for however long it takes, so that every server
    process has done its first-request work (the related-items graph) before anything is timed."""
    import httpx

    def one(_) -> None:
        httpx.get(base + path, timeout=900).raise_for_status()

    with ThreadPoolExecutor(requests) as pool:
        list(pool.map(one, range(requests)))


def served(home: Path, work: Path, model: str, query_paths: list[str], concurrency: list[int], seconds: float,
           warmup: float, id_sample: int, seed: int) -> dict:
    from serve_load import WRK_DONE, cpu_seconds, drive, run_wrk, wrk_script

    photos = [Path(p).read_bytes() for p in query_paths]
    cores = os.cpu_count() or 1
    load_before = [round(x, 2) for x in os.getloadavg()]
    others = Others()
    alone = {str(c): round(embed_alone(model, photos, c, seconds), 1) for c in sorted({1, cores})}
    print(f"embedding alone: {alone} images/s", file=sys.stderr, flush=True)
    out: dict = {"query_photos": len(photos), "query_bytes_mean": round(sum(map(len, photos)) / len(photos)),
                 "embedding_alone": {"images_per_s_by_callers": alone, "callers": cores,
                                     "images_per_s": alone[str(cores)], "load_average_before": load_before,
                                     "other_processes_cores": others.cores()}}
    if shutil.which("wrk") is None:
        out["skipped"] = "wrk is not installed (apt-get install wrk)"
        return out
    with open(work / "manifest.csv", newline="") as f:
        ids = [r["path"] for r in csv.DictReader(f)]
    ids = random.Random(seed).sample(ids, min(id_sample, len(ids)))
    scripts_dir = work / "wrk"
    scripts_dir.mkdir(exist_ok=True)
    upload_script = scripts_dir / "upload.lua"
    paths = ",".join(json.dumps(str(Path(p).resolve())) for p in query_paths)
    upload_script.write_text((UPLOAD_LUA + WRK_DONE) % paths)
    scripts = {"search_by_upload": upload_script,
               "search_by_id": wrk_script([f"/api/search?k=20&item={quote(k, safe='')}" for k in ids], scripts_dir,
                                          "search_by_id"),
               "related": wrk_script([f"/api/related?k=20&item={quote(k, safe='')}" for k in ids], scripts_dir,
                                     "related")}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(home, port, "--no-auth", timeout=900)
    try:
        warm(base, "/api/related?k=20&item=" + quote(ids[0], safe=""))  # each process builds its graph first
        for name, script in scripts.items():
            run_wrk(base, script, 4, warmup, server.pid)  # warm: model, index, item cache
            rows = []
            for c in concurrency:
                others = Others()
                row = run_wrk(base, script, c, seconds, server.pid)
                row["other_processes_cores"] = others.cores(row["server_cpu_s"])
                row["wrk_cpu_cores"] = round(row["wrk_cpu_s"] / seconds, 3)
                rows.append(row)
                print(f"{name} c={c}: {row['requests_per_s']} req/s p50 {row['latency_ms']['p50']} ms p99 "
                      f"{row['latency_ms']['p99']} ms, server {row['server_cpu_ms_per_request']} ms CPU/request, "
                      f"wrk {row['wrk_cpu_s']} s CPU, errors {row['errors']}", file=sys.stderr, flush=True)
            out[name] = rows

        async def by_upload(client, r):
            return await client.post("/api/search", params={"k": 20}, files={"file": ("q.jpg", r.choice(photos))})

        rows = []
        for c in concurrency:
            cpu0, scpu0, others = cpu_seconds(), cpu_seconds(server.pid), Others()
            row = asyncio.run(drive(base, by_upload, c, seconds, warmup))
            row.update(generator_cpu_s=round(cpu_seconds() - cpu0, 2),
                       server_cpu_s=round(cpu_seconds(server.pid) - scpu0, 2),
                       note="CPU over warm-up + measured window")
            row["other_processes_cores"] = others.cores(row["server_cpu_s"])
            rows.append(row)
            print(f"upload (httpx) c={c}: {row['requests_per_s']} req/s, generator {row['generator_cpu_s']} s CPU",
                  file=sys.stderr, flush=True)
        out["search_by_upload_httpx"] = rows
    finally:
        server.terminate()
        server.wait(timeout=60)
    out["in_process_upload_search"] = in_process_breakdown(home, query_paths)
    print(f"in process: {out['in_process_upload_search']}", file=sys.stderr, flush=True)
    others = Others()
    again = round(embed_alone(model, photos, cores, seconds), 1)
    print(f"embedding alone again: {again} images/s", file=sys.stderr, flush=True)
    first = out["embedding_alone"]["images_per_s"]
    out["embedding_alone"].update(
        images_per_s=round((first + again) / 2, 1),
        before={"images_per_s": first, "other_processes_cores": out["embedding_alone"]["other_processes_cores"]},
        after={"images_per_s": again, "other_processes_cores": others.cores()},
        note=f"images_per_s: mean of {cores} callers before the server started and after it stopped")
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


# ---- the run ---------------------------------------------------------------------------------------------------
def summary(result: dict) -> dict:
    v, raw, s = result["viscover"], result["raw_onnxruntime"], result["served"]
    out = {"images": result["images"], "generate_s": result["generate"]["seconds"],
           "viscover_ingest_s": v["ingest"]["seconds"], "viscover_index_s": v["index"]["seconds"],
           "viscover_total_s": v["total_seconds"], "viscover_images_per_s": v["images_per_s"],
           "viscover_index_only_images_per_s": v["index_images_per_s"],
           "peak_rss_mb_ingest_index": [v["ingest"]["peak_tree_rss_mb"], v["index"]["peak_tree_rss_mb"]],
           "index_kind": v["index_kind"], "home_disk_bytes_per_item": v["home_disk_bytes_per_item"],
           "raw_images_per_s": raw["images_per_s"], "raw_best_layout": raw["best_layout"],
           "ratio_to_raw": round(v["images_per_s"] / raw["images_per_s"], 3),
           "index_only_ratio_to_raw": round(v["index_images_per_s"] / raw["images_per_s"], 3)}
    alone = s["embedding_alone"]["images_per_s"]
    out["embedding_alone_images_per_s"] = alone
    out["other_processes_cores"] = {  # CPU that other work on the machine took during each stage
        "ingest": v["ingest"]["other_processes_cores"], "index": v["index"]["other_processes_cores"],
        "raw_before": raw["before"]["other_processes_cores"], "raw_after": raw["after"]["other_processes_cores"],
        "embedding_alone_before": s["embedding_alone"]["other_processes_cores"]}
    if "search_by_upload" in s:
        up = s["search_by_upload"]
        best = max(up, key=lambda r: r["requests_per_s"])
        left = max(0.0, (os.cpu_count() or 1) - best["wrk_cpu_cores"]) / (os.cpu_count() or 1)
        out.update({
            "upload_req_per_s_by_clients": {str(r["concurrency"]): r["requests_per_s"] for r in up},
            "upload_p99_ms_by_clients": {str(r["concurrency"]): r["latency_ms"]["p99"] for r in up},
            "upload_best_req_per_s": best["requests_per_s"], "upload_best_clients": best["concurrency"],
            "upload_ratio_to_embedding_alone": round(best["requests_per_s"] / alone, 3),
            "upload_ratio_to_embedding_alone_on_cores_left": round(best["requests_per_s"] / (alone * left), 3),
            "upload_goal_ratio": 0.9,
            "upload_server_cpu_ms_per_request": best["server_cpu_ms_per_request"],
            "upload_in_process_ms": s["in_process_upload_search"].get("search_image_ms"),
            "upload_in_process_embedding_share": s["in_process_upload_search"].get("embedding_share"),
            "upload_httpx_req_per_s_by_clients": {str(r["concurrency"]): r["requests_per_s"]
                                                  for r in s["search_by_upload_httpx"]},
            "search_by_id_req_per_s_by_clients": {str(r["concurrency"]): r["requests_per_s"]
                                                  for r in s["search_by_id"]},
            "related_req_per_s_by_clients": {str(r["concurrency"]): r["requests_per_s"] for r in s["related"]},
        })
        out["other_processes_cores"]["embedding_alone_after"] = s["embedding_alone"]["after"]["other_processes_cores"]
        out["other_processes_cores"].update({f"{name}_max": max(r["other_processes_cores"] for r in s[name])
                                             for name in ("search_by_upload", "search_by_id", "related")})
    return out


def raw_sample(work: Path, args) -> list[str]:
    """The images of the raw reference: a seeded sample of --raw-sample of the manifest's (all with 0)."""
    with open(work / "manifest.csv", newline="") as f:
        paths = [str(work / r["path"]) for r in csv.DictReader(f)]
    if args.raw_sample and args.raw_sample < len(paths):
        paths = sorted(random.Random(args.seed).sample(paths, args.raw_sample))
    return paths


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=400, help="distinct query photos for upload search")
    ap.add_argument("--raw-sample", type=int, default=10_000, help="images for the raw reference (0: all)")
    ap.add_argument("--raw-repeats", type=int, default=1)
    ap.add_argument("--concurrency", default="1,4,16,64")
    ap.add_argument("--seconds", type=float, default=10.0, help="per HTTP row and per embedding-alone run")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--id-sample", type=int, default=2000, help="item ids drawn from for search by id / related")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--dir", type=Path, help="work folder, kept (default: a temporary one, removed at the end)")
    ap.add_argument("--raw-only", action="store_true",
                    help="only the raw reference's layouts, on the images already in --dir (a check on a quiet "
                         "machine)")
    ap.add_argument("--json")
    args = ap.parse_args()
    load_start = [round(x, 2) for x in os.getloadavg()]
    own = args.dir is None
    work = Path(tempfile.mkdtemp(prefix="viscover-real-")) if own else args.dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        from viscover.embed import load_embedder

        embedder = load_embedder("efficientnet-lite0")  # exported/cached outside the timed parts
        model = str(embedder.path)
        assert (embedder.spec.size, embedder.spec.layout, embedder.spec.dtype) == (SIDE, "NHWC", "uint8")
        _, query_rows = sources_and_queries(args.queries, args.seed)
        if args.raw_only:
            if own or not (work / "manifest.csv").is_file():
                raise SystemExit("--raw-only needs --dir with the images of an earlier run")
            result = {"benchmark": "real_images --raw-only", "images": args.images,
                      "raw_onnxruntime": {"sample": "seeded sample",
                                          **raw_reference(model, raw_sample(work, args), args.raw_repeats)},
                      "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
                      "environment": environment()}
            emit(result, args.json)
            return result
        made = work / "generated.json"
        previous = json.loads(made.read_text()) if made.is_file() else {}
        if previous.get("images") == args.images and previous.get("seed") == args.seed:
            generated = {**previous, "reused": True}
            print(f"reusing the {args.images} images in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work / "images", ignore_errors=True)
            generated = generate(work, args.images, args.seed, args.queries)
        print(f"generate: {generated}", file=sys.stderr, flush=True)
        result: dict = {"benchmark": "real_images", "images": args.images, "model": embedder.name,
                        "onnx_file": Path(model).name, "generate": generated}
        paths = raw_sample(work, args)
        before = raw_reference(model, paths, args.raw_repeats)
        result["viscover"] = viscover_end_to_end(work, work / "home", args.images)
        print(f"viscover: {result['viscover']}", file=sys.stderr, flush=True)
        result["raw_onnxruntime"] = {"sample": "seeded sample" if len(paths) < args.images else "all images",
                                     **raw_again(model, paths, before)}
        result["served"] = served(work / "home", work, model, [r["path"] for r in query_rows],
                                  [int(c) for c in args.concurrency.split(",")], args.seconds, args.warmup,
                                  args.id_sample, args.seed)
        result["summary"] = summary(result)
        result["load_average"] = {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]}
        result["environment"] = environment({"viscover": str(Path(sys.modules["viscover"].__file__).parent),
                                             "onnxruntime": __import__("onnxruntime").__version__,
                                             "pillow": __import__("PIL").__version__})
        emit(result, args.json)
        return result
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
