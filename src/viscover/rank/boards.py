"""A ranker learned from the catalogue's own boards, for catalogues without engagement logs.

Hide one board membership of each of a sample of items; compute their related-items candidates and features on
the remaining graph; label a candidate positive when it is on the hidden board. A LightGBM model fitted to this
learns how much each signal (walks, co-occurrence, looks, labels, the query's degree) predicts co-curation in this
catalogue: on clothing, where a board is one person's photo session, looks dominate; on a community-structured
graph, walks do. A fixed heuristic cannot be right for both (see README, "Related items").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from viscover.candidates.candidate_set import CandidateSet
from viscover.candidates.features import FEATURES, features
from viscover.candidates.query import CandidateQuery
from viscover.errors import BadRequestError
from viscover.graph.attributes import ItemAttributes
from viscover.graph.bipartite import Bipartite
from viscover.graph.holdout import hidden_memberships
from viscover.metrics import related_metrics
from viscover.rank.heuristic import heuristic_score
from viscover.rank.ranker import LightGBMRanker, RankParams, fit_ranker


class CandidateSource(Protocol):
    """What board training reads from a related-items service built on a graph (viscover.related.RelatedItems)."""

    attrs: ItemAttributes | None

    def candidates(self, query_nodes, weights=None, want_domain: int = -1) -> tuple[CandidateSet, CandidateQuery]: ...


@dataclass
class BoardTrainReport:
    """What board training did, and hit-rate/MRR of the learned ranker and the heuristic on held-out queries."""

    queries: int = 0
    heldout_queries: int = 0
    rows: int = 0
    positives: int = 0
    metrics: dict = field(default_factory=dict)  # {"learned": {hit@10, hit@50, mrr}, "heuristic": {...}}
    feature_importance: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """The report as JSON-ready values (floats rounded to 3 places)."""
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def board_rows(graph: Bipartite, make_service: Callable[[Bipartite], CandidateSource], queries: int, seed: int):
    """Candidate feature rows for hidden memberships: (x, y, query index per row, cold flag per query, nodes)."""
    items, boards = hidden_memberships(graph, queries, seed)
    train = graph.without_edges(items, boards)
    service = make_service(train)
    xs, ys, groups, colds, nodes = [], [], [], [], []
    for g, (q, b) in enumerate(zip(items, boards)):
        cands, query = service.candidates([int(q)])
        xs.append(features(cands, train, query.nodes, service.attrs).matrix)
        ys.append(np.isin(cands.nodes, graph.members_of(int(b))))
        groups.append(np.full(len(cands), g))
        colds.append(query.cold)
        nodes.append(cands.nodes)
    cat = lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)  # noqa: E731
    return (cat(xs, np.float32).reshape(-1, len(FEATURES)), cat(ys, bool), cat(groups, np.int64),
            np.array(colds, bool), cat(nodes, np.int64))


def train_board_ranker(graph: Bipartite, make_service: Callable[[Bipartite], CandidateSource], *,
                       queries: int = 1000, seed: int = 0,
                       params: RankParams = RankParams()) -> tuple[LightGBMRanker, BoardTrainReport]:
    """Fit the ranker on hidden memberships; report hit-rate/MRR vs the heuristic on held-out queries."""
    start = time.perf_counter()
    x, y, group, cold, nodes = board_rows(graph, make_service, queries, seed)
    report = BoardTrainReport(queries=len(cold), rows=len(y), positives=int(y.sum()))
    if report.positives == 0:
        raise BadRequestError("no board-mate was ever a candidate: the catalogue needs boards with several items")
    rng = np.random.default_rng(seed)
    held = rng.permutation(len(cold))[: int(round(params.holdout * len(cold)))]
    is_held = np.isin(group, held)
    # LambdaRank over each query's candidates: every query counts alike and the top of each list matters most.
    # (A pointwise loss let the few huge boards, with hundreds of positives each, decide: measured on clothing,
    # held-out hit@10 0.53 pointwise vs 0.73 for the heuristic.)
    train_rows = ~is_held  # rows are grouped by query, in query order
    sizes = np.bincount(group[train_rows])
    ranker = fit_ranker(x[train_rows], y[train_rows].astype(np.float64), params, group=sizes[sizes > 0],
                        objective="lambdarank", lambdarank_truncation_level=20)
    report.heldout_queries = len(held)
    if len(held):
        learned, heuristic, relevant = [], [], []
        for g in held:
            rows = np.nonzero(group == g)[0]
            for scores, out in ((ranker.score(x[rows]), learned), (heuristic_score(x[rows], cold[g]), heuristic)):
                out.append(nodes[rows][np.lexsort((nodes[rows], -scores))][:50])
            relevant.append(nodes[rows][y[rows]])
        report.metrics = {"learned": related_metrics(learned, relevant), "heuristic": related_metrics(heuristic,
                                                                                                      relevant)}
    report.feature_importance = ranker.feature_importance()
    report.seconds = time.perf_counter() - start
    ranker.meta = {"source": "boards", "params": {"queries": queries, "seed": seed, "rounds": params.rounds},
                   "report": report.to_dict()}
    return ranker, report
