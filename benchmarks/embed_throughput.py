"""Embedding throughput: viscover's whole ingest + embed + index pipeline from image files, against raw ONNX
Runtime running the same model on already decoded, already resized pixels, in the same run.

    python benchmarks/embed_throughput.py [--limit N] [--repeats 3] [--json out.json]

Raw ONNX Runtime: one session with all cores as intra-op threads, the model's own graph, pixel batches prepared
beforehand (decode excluded), for several batch sizes; the best is the reference. Pipeline: `Engine.ingest` of a
manifest (read, hash, probe) then `Engine.index` (worker processes decode, resize and embed; shards saved;
FAISS index built) into a fresh home. Runs alternate and the median of the repeats is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, emit, machine  # noqa: E402


def image_rows(limit: int) -> list[dict]:
    from viscover.datasets import clothing_rows, grocery_rows

    rows = list(grocery_rows(DATA / "grocery")) + list(clothing_rows(DATA / "clothing"))
    return rows[:limit] if limit else rows


def raw_onnxruntime(model_path: Path, pixels: np.ndarray, batch: int, threads: int) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: pixels[:batch]})  # warm-up
    start = time.perf_counter()
    for i in range(0, len(pixels), batch):
        session.run(None, {name: pixels[i:i + batch]})
    return len(pixels) / (time.perf_counter() - start)


def pipeline(manifest: Path, settings) -> dict:
    from viscover import Engine

    with tempfile.TemporaryDirectory() as home:
        with Engine(home, settings) as engine:
            start = time.perf_counter()
            ingest = engine.ingest(manifest, image_roots=[DATA])  # the manifest is in a temporary folder
            ingested = time.perf_counter()
            report = engine.index()
            end = time.perf_counter()
    n = report.embedded
    return {"images": n, "skipped": len(ingest.skipped) + len(report.failed),
            "ingest_s": ingested - start, "index_s": end - ingested, "images_per_s": n / (end - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--json")
    args = parser.parse_args()

    from viscover import Settings
    from viscover.datasets import write_manifest
    from viscover.embed import load_embedder
    from viscover.embed.pipeline import ImageJob, embed_images, load_pixels, worker_count

    settings = Settings(model=args.model)
    embedder = load_embedder(args.model)  # exports/caches the model outside the timed runs
    model_path = getattr(embedder, "path", None)
    if model_path is None:
        raise SystemExit(f"{args.model}: not an ONNX model; this benchmark compares against raw ONNX Runtime")
    rows = image_rows(args.limit)
    tmp = Path(tempfile.mkdtemp())
    manifest = tmp / "images.csv"
    write_manifest(rows, manifest)
    print(f"decoding {len(rows)} images for the raw reference ...", file=sys.stderr)
    pixels = np.stack([load_pixels(ImageJob(i, r["path"]), embedder.spec, settings) for i, r in enumerate(rows)])
    threads = os.cpu_count() or 1
    raw_runs: dict[int, list[float]] = {b: [] for b in (1, 2, 4, 8)}
    pipe_runs: list[dict] = []
    for rep in range(args.repeats):
        for b in raw_runs:
            raw_runs[b].append(raw_onnxruntime(model_path, pixels, b, threads))
        pipe_runs.append(pipeline(manifest, settings))
        print(f"repeat {rep + 1}: raw {max(r[-1] for r in raw_runs.values()):.1f} img/s, "
              f"pipeline {pipe_runs[-1]['images_per_s']:.1f} img/s", file=sys.stderr)
    # Where the pipeline's time goes: per-image decode cost and single-thread inference, measured here too
    sample = rows[: min(500, len(rows))]
    start = time.perf_counter()
    for i, r in enumerate(sample):
        load_pixels(ImageJob(i, r["path"]), embedder.spec, settings)
    decode_ms = (time.perf_counter() - start) / len(sample) * 1000
    one_thread = raw_onnxruntime(model_path, pixels[:1000], settings.batch_size, 1)
    workers = worker_count(settings)
    bound = workers / (1 / one_thread + decode_ms / 1000)
    jobs = [ImageJob(i, r["path"]) for i, r in enumerate(rows)]
    start = time.perf_counter()
    for _ in embed_images(jobs, embedder, settings):
        pass
    embed_stage = len(jobs) / (time.perf_counter() - start)
    raw = {b: statistics.median(v) for b, v in raw_runs.items()}
    best_batch = max(raw, key=raw.get)
    pipe = statistics.median(r["images_per_s"] for r in pipe_runs)
    result = {
        "benchmark": "embed_throughput",
        "machine": machine(),
        "model": embedder.name,
        "images": len(rows),
        "repeats": args.repeats,
        "raw_onnxruntime": {"threads": threads, "images_per_s_by_batch": {str(b): round(v, 1) for b, v in raw.items()},
                            "best_batch": best_batch, "images_per_s": round(raw[best_batch], 1)},
        "pipeline": {"workers": worker_count(settings), "batch_size": settings.batch_size,
                     "images_per_s": round(pipe, 1),
                     "runs": [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()}
                              for r in pipe_runs]},
        "ratio_to_raw": round(pipe / raw[best_batch], 3),
        "target_ratio": 0.9,
        "breakdown": {
            "decode_resize_ms_per_image_1_core": round(decode_ms, 3),
            "onnxruntime_1_thread_images_per_s": round(one_thread, 1),
            "embed_stage_only_images_per_s": round(embed_stage, 1),
            "embed_stage_ratio_to_raw": round(embed_stage / raw[best_batch], 3),
            "cpu_bound_images_per_s": round(bound, 1),
            "note": "cpu_bound = workers / (1-thread inference time + decode time): what the cores can do when "
                    "every image must also be decoded; the pipeline total adds ingest and worker start-up.",
        },
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
