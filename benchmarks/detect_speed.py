"""Object-detection speed: viscover's `Detector.detect` from image files against raw ONNX Runtime on the same images.

    python benchmarks/detect_speed.py [--images 200] [--repeats 3] [--threads 0] [--json out.json]

  * pipeline - per image: read the file, `decode_image` (EXIF, RGB), then `Detector.detect` (resize to the model's
               512x512 input, float tensor, session run, score filter, scaling to the image, per-class NMS).
  * raw_ort  - the same model in a plain `onnxruntime.InferenceSession` (same thread settings), one image per
               run on tensors resized and converted beforehand (decode and resize excluded): the ceiling.

Images: --images/2 grocery photos spread over the COCO fruit classes (apples, bananas, oranges, carrots) and as
many clothing photos. Each repeat is one pass over the images running both sides back to back on every image
(alternating which goes first), so a change in machine load hits both alike; one untimed warm-up pass over 10
images comes first. Latencies are per image (time.perf_counter around each call); images/s is images divided by
the summed latencies; the median over repeats of each figure is reported, with every repeat in the JSON.
`cpu_over_wall` is process CPU time over wall time per pass: well below the thread count means other processes
took the cores (rerun when the machine is quiet). A last pass times the pipeline's stages separately: read and
decode, resize to tensor, session run, postprocess (scaling, clipping, NMS).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, emit, environment  # noqa: E402

MODEL = Path(os.environ.get("VISCOVER_SHARED_MODELS", DATA.parent / "models")) / "centernet-coco.onnx"
FRUIT = {"Golden-Delicious", "Granny-Smith", "Pink-Lady", "Red-Delicious", "Royal-Gala", "Banana", "Orange",
         "Satsumas", "Carrots"}
MAX_PIXELS = 50_000_000


def image_paths(n: int) -> list[Path]:
    from viscover.datasets import clothing_rows, grocery_rows

    fruit = [r["path"] for r in grocery_rows(DATA / "grocery") if r["label.product"] in FRUIT and r["split"] == "train"]
    clothes = [r["path"] for r in clothing_rows(DATA / "clothing")]
    step = max(1, len(fruit) // (n - n // 2))  # spread over the fruit classes rather than the first one only
    return [Path(p) for p in fruit[::step][:n - n // 2] + clothes[:n // 2]]


def summary(latencies: list[float]) -> dict:
    ms = np.asarray(latencies) * 1000
    return {"images": len(ms), "images_per_s": round(len(ms) / (ms.sum() / 1000), 2),
            "latency_ms": {"p50": round(float(np.percentile(ms, 50)), 2), "p99": round(float(np.percentile(ms, 99)), 2),
                           "mean": round(float(ms.mean()), 2), "max": round(float(ms.max()), 2)}}


def detect_file(detector, path: Path, min_score: float) -> int:
    """Our pipeline for one image file: read, decode, detect; returns the number of detections."""
    from viscover.imaging import decode_image

    img = decode_image(path.read_bytes(), max_pixels=MAX_PIXELS, name=str(path))
    return len(detector.detect(img, min_score=min_score))


def run_pass(detector, session, paths: list[Path], tensors: list[np.ndarray], min_score: float,
             pipeline_first: bool) -> dict:
    """One pass over the images, both sides back to back on each image (so load changes hit both alike)."""
    lat = {"pipeline": [], "raw_ort": []}
    found = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i, path in enumerate(paths):
        sides = ["pipeline", "raw_ort"] if (i % 2 == 0) == pipeline_first else ["raw_ort", "pipeline"]
        for side in sides:
            start = time.perf_counter()
            if side == "pipeline":
                found += detect_file(detector, path, min_score)
            else:
                session.run([detector.output_name], {detector.input_name: tensors[i]})
            lat[side].append(time.perf_counter() - start)
    cpu_over_wall = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    return {"pipeline": summary(lat["pipeline"]), "raw_ort": summary(lat["raw_ort"]), "detections": found,
            "cpu_over_wall": round(cpu_over_wall, 2)}


def breakdown(detector, paths: list[Path], min_score: float) -> dict:
    """Mean milliseconds per image of each pipeline stage, timed separately."""
    from viscover.detect.detector import to_tensor
    from viscover.imaging import decode_image

    stages = {"read_and_decode": [], "resize_to_tensor": [], "run": [], "postprocess_nms": []}
    for path in paths:
        t0 = time.perf_counter()
        img = decode_image(path.read_bytes(), max_pixels=MAX_PIXELS, name=str(path))
        t1 = time.perf_counter()
        x = to_tensor(img, detector.size)
        t2 = time.perf_counter()
        raw = detector.run(x)
        t3 = time.perf_counter()
        detector.postprocess(raw, img.width, img.height, min_score=min_score)
        t4 = time.perf_counter()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[key].append(dt)
    return {k: round(1000 * statistics.fmean(v), 3) for k, v in stages.items()}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: all cores)")
    p.add_argument("--min-score", type=float, default=0.3)
    p.add_argument("--model", type=Path, default=MODEL)
    p.add_argument("--json")
    args = p.parse_args(argv)

    import onnxruntime as ort

    from viscover.detect import load_detector
    from viscover.detect.detector import to_tensor
    from viscover.imaging import decode_image

    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    env = environment({"onnxruntime": ort.__version__})
    threads = args.threads if args.threads > 0 else (os.cpu_count() or 1)
    paths = image_paths(args.images)
    detector = load_detector(args.model, threads=threads)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(args.model), opts, providers=["CPUExecutionProvider"])
    tensors = [to_tensor(decode_image(p.read_bytes(), max_pixels=MAX_PIXELS), detector.size) for p in paths]

    run_pass(detector, session, paths[:10], tensors[:10], args.min_score, True)  # warm-up, untimed
    passes = []
    for r in range(args.repeats):
        passes.append(run_pass(detector, session, paths, tensors, args.min_score, r % 2 == 0))
        print(f"repeat {r + 1}/{args.repeats}: pipeline {passes[-1]['pipeline']['images_per_s']} images/s, raw "
              f"{passes[-1]['raw_ort']['images_per_s']} images/s, cpu/wall {passes[-1]['cpu_over_wall']}",
              file=sys.stderr)
    found = passes[-1]["detections"]

    def median(runs: list[dict]) -> dict:
        return {"images": runs[0]["images"],
                "images_per_s": round(statistics.median(x["images_per_s"] for x in runs), 2),
                "latency_ms": {k: round(statistics.median(x["latency_ms"][k] for x in runs), 2)
                               for k in runs[0]["latency_ms"]},
                "repeats": runs}

    pipe, raw = median([x["pipeline"] for x in passes]), median([x["raw_ort"] for x in passes])
    result = {
        "benchmark": "viscover object detection speed (benchmarks/detect_speed.py)",
        "started": started,
        "command": ["python", *sys.argv] if argv is None else ["python", "benchmarks/detect_speed.py", *argv],
        **env,
        "threads": {"onnxruntime_intra_op": threads, "onnxruntime_inter_op": 1, "images": "one at a time"},
        "model": {"path": str(args.model), "name": detector.name, "input_side": detector.size,
                  "labels": len(detector.labels)},
        "images": {"count": len(paths), "grocery_fruit_photos": len(paths) - args.images // 2,
                   "clothing_photos": args.images // 2, "detections_per_image_at_min_score":
                   round(found / len(paths), 2), "min_score": args.min_score},
        "pipeline": pipe,
        "raw_ort": raw,
        "pipeline_over_raw_latency_p50": round(pipe["latency_ms"]["p50"] / raw["latency_ms"]["p50"], 3),
        "cpu_over_wall": [x["cpu_over_wall"] for x in passes],
        "pipeline_stage_ms_mean": breakdown(detector, paths, args.min_score),
    }
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
