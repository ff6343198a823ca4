"""Retrieval quality of an embedding model on the real data, float and binary, via `viscover eval`'s function.

    python benchmarks/retrieval_quality.py [--model efficientnet-lite0] [--json out.json]

Grocery (Klasson et al.): validation photos as queries, product label relevance, against the other validation
photos (photo->photo) and against the one catalogue image per product (photo->catalog). Clothing: category label,
all labelled photos, and only the held-out contributors (split val; the split `viscover datasets clothing` makes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, emit, machine  # noqa: E402

CASES = [
    ("grocery photo->photo", "grocery", "product", dict(query_domain="photo", gallery_domain="photo",
                                                         query_split="val", gallery_split="val")),
    ("grocery photo->catalog", "grocery", "product", dict(query_domain="photo", gallery_domain="catalog",
                                                           query_split="val")),
    ("clothing category (all)", "clothing", "category", {}),
    ("clothing category (held-out senders)", "clothing", "category", dict(query_split="val", gallery_split="val")),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--json")
    args = parser.parse_args()

    from viscover import Settings
    from viscover.datasets import clothing_rows, grocery_rows, write_manifest
    from viscover.embed import load_embedder
    from viscover.eval.retrieval import evaluate_manifest

    tmp = Path(tempfile.mkdtemp())
    manifests = {"grocery": tmp / "grocery.csv", "clothing": tmp / "clothing.csv"}
    write_manifest(grocery_rows(DATA / "grocery"), manifests["grocery"])
    write_manifest(clothing_rows(DATA / "clothing"), manifests["clothing"])
    embedder = load_embedder(args.model)
    settings = Settings(model=args.model)
    results = []
    for name, data, task, kw in CASES:
        print(f"evaluating {name} ...", file=sys.stderr)
        report = evaluate_manifest(manifests[data], task, embedder=embedder, settings=settings, **kw).to_dict()
        results.append({"case": name, "task": task, **{k: report[k] for k in ("queries", "gallery", "float",
                                                                              "binary")}})
        print(f"  R@1 float {report['float']['recall@1']:.4f}  binary {report['binary']['recall@1']:.4f}",
              file=sys.stderr)
    emit({"benchmark": "retrieval_quality", "machine": machine(), "model": embedder.name, "results": results},
         args.json)


if __name__ == "__main__":
    main()
