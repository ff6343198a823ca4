"""Does training help, does one unified model match specialised ones, and do bits keep up with floats?
End to end: manifests -> trunk features (cold cache by default) -> three trainings -> evaluation of the exported
model folders with `viscover eval`'s function, against the untrained backbone.

    python benchmarks/train_quality.py [--epochs 15] [--warm-cache] [--json out.json]

Models: grocery-only (tasks product + category), clothing-only (category), unified (both manifests, both tasks).
Evaluation: grocery validation photos against each other and against the catalogue images (product), clothing
photos of held-out contributors against each other (category). Nothing evaluated was trained on, except the
81 catalogue images, which are the gallery a shop would index.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, emit, machine  # noqa: E402

TASKS = [
    ("grocery photo->photo", "grocery", "product", dict(query_domain="photo", gallery_domain="photo",
                                                         query_split="val", gallery_split="val")),
    ("grocery photo->catalog", "grocery", "product", dict(query_domain="photo", gallery_domain="catalog",
                                                           query_split="val")),
    ("clothing category", "clothing", "category", dict(query_split="val", gallery_split="val")),
]
MODELS = {"grocery only": (["grocery"], ["product", "category"]), "clothing only": (["clothing"], ["category"]),
          "unified": (["grocery", "clothing"], ["product", "category"])}
SPECIALIST = {"grocery": "grocery only", "clothing": "clothing only"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: TrainConfig's")
    parser.add_argument("--warm-cache", action="store_true", help="reuse cached trunk features (default: cold)")
    parser.add_argument("--json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="viscover-train-quality-"))
    if not args.warm_cache:
        os.environ["VISCOVER_CACHE"] = str(work / "cache")  # measure feature extraction too

    from viscover import Settings
    from viscover.datasets import clothing_rows, grocery_rows, write_manifest
    from viscover.eval.retrieval import evaluate_manifest
    from viscover.train.config import TrainConfig
    from viscover.train.loop import train

    started = time.perf_counter()
    manifests = {"grocery": work / "grocery.csv", "clothing": work / "clothing.csv"}
    write_manifest(grocery_rows(DATA / "grocery"), manifests["grocery"])
    write_manifest(clothing_rows(DATA / "clothing"), manifests["clothing"])
    timings, models = {}, {"untrained": "efficientnet-lite0"}
    for name, (data, tasks) in MODELS.items():
        cfg = TrainConfig(manifests=[str(manifests[d]) for d in data], tasks=tasks, out=str(work / name))
        if args.epochs:
            cfg.epochs = args.epochs
        print(f"training {name} ...", file=sys.stderr)
        t = time.perf_counter()
        train(cfg, log=lambda m: print("  " + m, file=sys.stderr))
        timings[f"train {name}"] = round(time.perf_counter() - t, 1)
        models[name] = cfg.out
    results = {}
    for model_name, model in models.items():
        for task_name, data, task, kw in TASKS:
            if model_name in SPECIALIST.values() and SPECIALIST[data] != model_name:
                continue
            report = evaluate_manifest(manifests[data], task, model=model, settings=Settings(), **kw).to_dict()
            results.setdefault(task_name, {})[model_name] = {
                "float_recall@1": report["float"]["recall@1"], "binary_recall@1": report["binary"]["recall@1"],
                "float_map@r": report["float"]["map@r"], "queries": report["queries"], "gallery": report["gallery"]}
            print(f"  {model_name:14s} {task_name:24s} R@1 float {report['float']['recall@1']:.4f} "
                  f"binary {report['binary']['recall@1']:.4f}", file=sys.stderr)
    checks = {}
    for task_name, data, _, _ in TASKS:
        r = results[task_name]
        checks[task_name] = {
            "gain_over_untrained": round(r["unified"]["float_recall@1"] - r["untrained"]["float_recall@1"], 4),
            "binary_minus_float_unified": round(r["unified"]["binary_recall@1"] - r["unified"]["float_recall@1"], 4),
            "unified_minus_specialist": round(r["unified"]["float_recall@1"]
                                              - r[SPECIALIST[data]]["float_recall@1"], 4),
        }
    targets = {
        "grocery photo->catalog R@1 >= 0.40": results["grocery photo->catalog"]["unified"]["float_recall@1"] >= 0.40,
        "grocery photo->photo +15 points over untrained": checks["grocery photo->photo"]["gain_over_untrained"] >= 0.15,
        "clothing category R@1 >= 0.60": results["clothing category"]["unified"]["float_recall@1"] >= 0.60,
        "binary within 2 points of float (every task, unified)":
            all(c["binary_minus_float_unified"] >= -0.02 for c in checks.values()),
        "unified within 1 point of specialists (every task)":
            all(c["unified_minus_specialist"] >= -0.01 for c in checks.values()),
    }
    timings["total"] = round(time.perf_counter() - started, 1)
    emit({"benchmark": "train_quality", "machine": machine(), "cold_feature_cache": not args.warm_cache,
          "config": TrainConfig(manifests=[], tasks=[]).to_dict() | ({"epochs": args.epochs} if args.epochs else {}),
          "results": results, "checks": checks, "targets": targets, "seconds": timings}, args.json)


if __name__ == "__main__":
    main()
