"""`viscover eval-related`: can related items recover a hidden board membership?

For a seeded sample of items with boards, one membership (item, board) each is hidden from the graph. For each
sampled item, related items are computed from what is left (its other boards; for an item left without boards,
walks start from its visual neighbours, as for any cold item) and judged against the hidden board's other items:
hit-rate@K (a board-mate among the first K) and MRR (1 / rank of the first board-mate, 0 beyond the list). The
blend (production ranking) is compared with each single signal: Pixie visits, plain co-occurrence counts, and
visual similarity alone. No ingest is needed: the manifest's images are embedded directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from viscover.candidates import VisualNeighbours
from viscover.catalog.records import Problem
from viscover.catalog.sources import manifest_source
from viscover.config import Settings
from viscover.embed import load_embedder
from viscover.embed.pipeline import ImageJob, embed_images
from viscover.errors import BadManifestError
from viscover.graph.bipartite import Bipartite
from viscover.graph.holdout import hidden_memberships
from viscover.graph.prune import PruneParams
from viscover.graph.prune import prune as prune_graph
from viscover.graphembed import GraphTrainConfig, train_graph
from viscover.index import VectorIndex, build_index
from viscover.metrics import related_metrics
from viscover.progress import ProgressFactory, no_progress
from viscover.rank import HeuristicRanker, Ranker
from viscover.rank.boards import train_board_ranker
from viscover.related import RelatedItems, RelatedParams

METHODS = ("blend", "pixie", "cooccurrence", "visual")  # plus "learned" (a board-supervised ranker)


def evaluate_related(manifest: Path, *, queries: int = 500, seed: int = 0, model: str | None = None,
                     settings: Settings | None = None, progress: ProgressFactory = no_progress,
                     ks=(10, 50), prune: PruneParams = PruneParams(), learned: int = 1000,
                     graph_config: GraphTrainConfig | None = None) -> dict:
    """Hidden-membership evaluation on a manifest with boards (its images are embedded for the visual signal).
    With `graph_config`, also PinSage embeddings ("graph") with the image embeddings as content vectors."""
    settings = settings or Settings()
    rows, skipped = [], []
    for row in manifest_source(Path(manifest), image_roots=None).rows:  # the user's own manifest: any path
        (skipped if isinstance(row, Problem) else rows).append(row)
    board_names = sorted({b for r in rows for b in (r.boards or [])})
    if not board_names:
        raise BadManifestError(f"{manifest}: no row has boards (column 'boards'); nothing to evaluate")
    embedder = load_embedder(model or settings.model)
    raw = np.zeros((len(rows), embedder.dim), np.float32)
    ok = np.zeros(len(rows), bool)
    jobs = [ImageJob(i, r.location) for i, r in enumerate(rows)]
    for batch in embed_images(jobs, embedder, settings, progress=progress, description="embed"):
        raw[batch.ids], ok[batch.ids] = batch.vectors, True
        skipped += [Problem(rows[i].where, reason) for i, reason in batch.failures]
    usable = np.nonzero(ok)[0]
    index_of_board = {b: i for i, b in enumerate(board_names)}
    edges = [(i, index_of_board[b]) for i in usable for b in (rows[i].boards or [])]
    left, right = (np.array(x, np.int64) for x in zip(*edges))
    full = Bipartite.from_edges("item-board", left, right, left_ids=usable)
    index = build_index(usable, usable, raw[usable], settings, centered=embedder.centered, model=embedder.name)
    out = evaluate_graph(full, index, queries=queries, seed=seed, settings=settings, progress=progress, ks=ks,
                         prune=prune, learned=learned,
                         graph_features=raw[full.left_ids] if graph_config is not None else None,
                         graph_config=graph_config)
    return {"manifest": str(manifest), "model": embedder.name, **out, "skipped": [str(p) for p in skipped]}


def evaluate_graph(full: Bipartite, index: VectorIndex | None, *, queries: int = 500, seed: int = 0,
                   settings: Settings | None = None, progress: ProgressFactory = no_progress, ks=(10, 50),
                   prune: PruneParams = PruneParams(), learned: int = 1000,
                   graph_features: np.ndarray | None = None, graph_config: GraphTrainConfig | None = None) -> dict:
    """The hidden-membership protocol on any graph (left ids = index ids), e.g. a synthetic one. With `learned`
    > 0, also a board-supervised ranker trained on that many other hidden memberships ("learned"). With
    `graph_features` (content vectors per left node of `full`), also PinSage embeddings trained on the training
    graph ("graph": all items ranked by cosine to the query's embedding, the query excluded)."""
    settings = settings or Settings()
    hidden_items, hidden_boards = hidden_memberships(full, queries, seed)
    train = full.without_edges(hidden_items, hidden_boards)
    pruned = None
    if prune.active and index is not None:
        train, pruned = prune_graph(train, *VisualNeighbours(train, index).unit_vectors(), prune)
    params = RelatedParams.from_settings(settings, seed=seed)

    def make_service(graph: Bipartite, ranker: Ranker = HeuristicRanker()) -> RelatedItems:
        return RelatedItems(graph, VisualNeighbours(graph, index) if index is not None else None, ranker=ranker,
                            params=params)

    service = make_service(train)
    services = {m: service for m in METHODS if index is not None or m != "visual"}
    if learned:  # a ranker fitted on other hidden memberships of the training graph (never the test ones)
        ranker, _ = train_board_ranker(train, make_service, queries=learned, seed=seed + 1)
        services["learned"] = make_service(train, ranker)
    relevant = [full.members_of(int(b))[full.members_of(int(b)) != q] for q, b in zip(hidden_items, hidden_boards)]
    results, rankings = {}, {}
    with progress("related", len(services) * len(hidden_items)) as advance:
        for method, svc in services.items():
            ranked = []
            for q in hidden_items:
                score_by = "blend" if method in ("blend", "learned") else method
                ranked.append(svc.related([int(q)], k=max(ks), score_by=score_by).nodes)
                advance(1)
            results[method] = related_metrics(ranked, relevant, ks)
            rankings[method] = ranked
    graph_report = None
    if graph_features is not None:  # trained on the training graph only: the hidden memberships never seen
        trained = train_graph(train, graph_features, graph_config or GraphTrainConfig(seed=seed))
        emb = trained.embeddings
        ranked = []
        for q in hidden_items:
            sims = emb @ emb[int(q)]
            sims[int(q)] = -np.inf
            n = min(max(ks), len(sims) - 1)  # the query itself is never a result (a small graph has fewer)
            top = np.argpartition(-sims, n - 1)[:n] if n > 0 else np.zeros(0, np.int64)
            ranked.append(top[np.lexsort((top, -sims[top]))])
        results["graph"] = related_metrics(ranked, relevant, ks)
        rankings["graph"] = ranked
        graph_report = {"seconds": trained.report["seconds"], "history": trained.report["history"]}
    is_cold = train.left_degree()[hidden_items] < params.cold_degree
    cold = int(is_cold.sum())
    out = {"items": int(full.n_left), "boards": int(full.n_right), "memberships": int(full.n_edges),
           "queries": int(len(hidden_items)), "cold_queries": cold, "seed": seed, "results": results}
    if graph_report is not None:  # where the graph embedding wins or loses: queries left with / without boards
        split = {"warm": np.nonzero(~is_cold)[0], "cold": np.nonzero(is_cold)[0]}
        out["by_warmth"] = {m: {name: related_metrics([r[i] for i in rows], [relevant[i] for i in rows], ks)
                                for name, rows in split.items() if len(rows)} for m, r in rankings.items()}
        out["graph_training"] = graph_report
    if pruned is not None:
        out["pruning"] = {"boards_dropped": pruned.boards_dropped, "edges_before": pruned.edges_before,
                          "edges_after": pruned.edges_after}
    return out
