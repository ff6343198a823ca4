"""Related-items quality: recover hidden board memberships, blend vs Pixie vs plain co-occurrence vs visual.

    python benchmarks/related_quality.py [--queries 500] [--json out.json]

1. Clothing (real photos; each contributor's photos are one board, so every item is on exactly one board and a
   hidden membership leaves it cold: walks start from its visual neighbours).
2. A synthetic power-law item-board graph with planted communities (items on several boards), with synthetic
   "visual" vectors (the item's community centre plus noise, so looks are informative but imperfect): warm items,
   where walks start from the item itself.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, emit, machine  # noqa: E402


def synthetic_case(queries: int, seed: int, settings) -> dict:
    from viscover.eval.related_eval import evaluate_graph
    from viscover.graph.synthetic import synthetic_graph
    from viscover.index import build_index

    syn = synthetic_graph(n_items=20_000, n_boards=3_000, n_edges=150_000, n_communities=60, seed=seed)
    vectors = syn.community_looks(64, 1.5, seed)
    ids = syn.graph.left_ids
    index = build_index(ids, ids, vectors[ids], settings, centered=True, model="synthetic")
    out = evaluate_graph(syn.graph, index, queries=queries, seed=seed, settings=settings)
    return {"data": "synthetic: 20k items, 3k boards, 150k memberships, 60 communities (p_in 0.8), 64-d vectors "
                    "= community centre + N(0, 1.5^2) noise", **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()

    from viscover import Settings
    from viscover.datasets import clothing_rows, write_manifest
    from viscover.eval.related_eval import evaluate_related

    settings = Settings()
    manifest = Path(tempfile.mkdtemp()) / "clothing.csv"
    write_manifest(clothing_rows(DATA / "clothing"), manifest)
    print("clothing ...", file=sys.stderr)
    clothing = evaluate_related(manifest, queries=args.queries, seed=args.seed, settings=settings)
    clothing.pop("skipped", None)
    print("synthetic ...", file=sys.stderr)
    synthetic = synthetic_case(args.queries, args.seed, settings)
    for name, result in (("clothing", clothing), ("synthetic", synthetic)):
        for method, m in result["results"].items():
            print(f"  {name:9s} {method:12s} hit@10 {m['hit@10']:.3f} hit@50 {m['hit@50']:.3f} MRR {m['mrr']:.3f}",
                  file=sys.stderr)
    emit({"benchmark": "related_quality", "machine": machine(), "clothing": clothing, "synthetic": synthetic},
         args.json)


if __name__ == "__main__":
    main()
