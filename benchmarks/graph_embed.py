"""PinSage graph embeddings vs Pixie, the blend and visual similarity on hidden board memberships.

    python benchmarks/graph_embed.py [--queries 300] [--epochs 8] [--json out.json]

1. Icons (real multi-category curation: 1,390 icons on 68 boards); content vectors = the configured image
   embedder's vectors (EfficientNet-Lite0 by default), as eval-related embeds a manifest.
2. A synthetic planted-community graph (2,000 items, 300 boards, 60 communities) with content = community centre
   plus heavy noise, so that looks alone are weak.
PinSage is trained on the training graph (hidden memberships removed); training time is reported.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, emit, machine  # noqa: E402


def synthetic_case(queries: int, seed: int, settings, config) -> dict:
    from viscover.eval.related_eval import evaluate_graph
    from viscover.graph.synthetic import synthetic_graph
    from viscover.index import build_index

    syn = synthetic_graph(n_items=2000, n_boards=300, n_edges=15000, n_communities=60, seed=seed)
    vectors = syn.community_looks(32, 3.0, seed)
    ids = syn.graph.left_ids
    index = build_index(ids, ids, vectors[ids], settings, centered=True, model="synthetic")
    out = evaluate_graph(syn.graph, index, queries=queries, seed=seed, settings=settings, learned=0,
                         graph_features=vectors[ids], graph_config=config)
    return {"data": "synthetic: 2k items, 300 boards, 15k memberships, 60 communities (p_in 0.8), 32-d content "
                    "= community centre + N(0, 3^2) noise", **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: GraphTrainConfig's)")
    parser.add_argument("--skip-icons", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()

    from viscover import Settings
    from viscover.eval.related_eval import evaluate_related
    from viscover.graphembed import GraphTrainConfig

    settings = Settings()
    config = GraphTrainConfig(epochs=args.epochs, dim=64, hidden=128, seed=args.seed,
                              **({"lr": args.lr} if args.lr is not None else {}))
    cases = {}
    if not args.skip_icons:
        print("icons ...", file=sys.stderr)
        t = time.perf_counter()
        icons = evaluate_related(DATA / "icons" / "icons.csv", queries=args.queries, seed=args.seed,
                                 settings=settings, learned=0, graph_config=config)
        icons.pop("skipped", None)
        cases["icons"] = {**icons, "wall_seconds": round(time.perf_counter() - t, 1)}
    print("synthetic ...", file=sys.stderr)
    t = time.perf_counter()
    cases["synthetic"] = {**synthetic_case(args.queries, args.seed, settings, config),
                          "wall_seconds": round(time.perf_counter() - t, 1)}
    for name, result in cases.items():
        for method, m in result["results"].items():
            print(f"  {name:9s} {method:12s} hit@10 {m['hit@10']:.3f} hit@50 {m['hit@50']:.3f} MRR {m['mrr']:.3f}",
                  file=sys.stderr)
        print(f"  {name:9s} graph training {result['graph_training']['seconds']:.1f} s", file=sys.stderr)
    emit({"benchmark": "graph_embed", "machine": machine(), "config": config.to_dict(), **cases}, args.json)


if __name__ == "__main__":
    main()
