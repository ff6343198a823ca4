"""Where the weak-match threshold comes from: the best search score of a new photo of a product the catalogue has,
against the best score of a photo unlike anything in it (clothing photos searched against the grocery catalogue).

    python benchmarks/weak_match.py --home GROCERY_HOME [--queries 200] [--json out.json]

GROCERY_HOME is an indexed grocery catalogue (e.g. `make demo IMAGES=` without the clothing, or the home
retrieval_quality.py caches). "Known" queries are catalogue photos searched with "more like this" (the photo itself
and its copies left out, so the best hit is another photo or the product's catalogue image); "unlike" queries are
clothing photos. A good `weak_match_score` sits above most "unlike" best scores and below most "known" ones.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, emit, machine  # noqa: E402


def percentiles(values: list[float]) -> dict:
    a = np.asarray(values)
    return {f"p{p}": round(float(np.percentile(a, p)), 4) for p in (1, 5, 10, 25, 50, 75, 90, 95, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json")
    args = parser.parse_args()
    from viscover import Engine, Filters, Settings

    rng = random.Random(0)
    with Engine(args.home, Settings(workers=1), create=False) as engine:
        photos = engine.store.filter_item_ids(Filters(domain="photo")).tolist()
        keys = [i.key for i in engine.store.items_by_ids(rng.sample(photos, min(args.queries, len(photos)))).values()]
        known = [engine.search_item(k, k=1)[0].score for k in keys]
        with open(DATA / "clothing" / "images.csv", newline="") as f:
            rows = rng.sample(list(csv.DictReader(f)), args.queries)
        unlike = [engine.search_image(str(DATA / "clothing" / "images" / f"{r['image']}.jpg"), k=1)[0].score
                  for r in rows]
    grid = np.round(np.arange(0.20, 0.80, 0.01), 2)
    k, u = np.asarray(known), np.asarray(unlike)
    errors = {float(t): {"known_flagged": float((k < t).mean()), "unlike_missed": float((u >= t).mean())}
              for t in grid}
    best = min(errors, key=lambda t: errors[t]["known_flagged"] + errors[t]["unlike_missed"])
    emit({"benchmark": "weak_match", "machine": machine(), "model": engine.settings.model,
          "catalogue_items": len(photos), "queries_each": args.queries,
          "best_score_known": percentiles(known), "best_score_unlike": percentiles(unlike),
          "threshold_min_total_error": best, "at_threshold": errors[best],
          "errors_by_threshold": {str(t): errors[t] for t in grid[::5]}}, args.json)


if __name__ == "__main__":
    main()
