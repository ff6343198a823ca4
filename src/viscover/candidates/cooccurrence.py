"""The co-occurrence generator: items sharing boards with the query's seeds, scored by the seeds' weights."""

from __future__ import annotations

import numpy as np

from viscover.candidates.base import CandidateSources, nothing, without_query
from viscover.candidates.query import CandidateParams, CandidateQuery
from viscover.graph.bipartite import Bipartite

MAX_BOARD = 5000  # members sampled from a larger board (bounded cost per query)


def cooccurrence(graph: Bipartite, seeds: np.ndarray, weights: np.ndarray, max_board: int = MAX_BOARD,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Items sharing boards with the seeds: (nodes, weighted count of shared boards), best first.
    Boards larger than `max_board` contribute a random sample of that many members (bounded cost)."""
    rng = np.random.default_rng(seed)
    parts, part_weights = [], []
    for s, w in zip(np.asarray(seeds, np.int64), np.asarray(weights, np.float64)):
        for board in graph.groups_of(int(s)):
            members = graph.members_of(int(board))
            if len(members) > max_board:
                members = rng.choice(members, size=max_board, replace=False)
            parts.append(members)
            part_weights.append(np.full(len(members), w))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0)
    nodes = np.concatenate(parts).astype(np.int64)
    uniq, inverse = np.unique(nodes, return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate(part_weights))
    order = np.lexsort((uniq, -counts))
    return uniq[order], counts[order]


class CooccurrenceCandidates:
    """Items on the same boards as the query's seeds (plain co-occurrence, the baseline walks improve on)."""

    name = "co-occurrence"

    def __init__(self, sources: CandidateSources):
        self.graph = sources.graph

    def propose(self, query: CandidateQuery, params: CandidateParams) -> tuple[np.ndarray, np.ndarray]:
        """The `pool` items sharing the most (weighted) boards with the seeds, the query's own nodes dropped after
        the cut; large boards are sampled with the walk seed."""
        if not len(query.seeds):
            return nothing()
        nodes, counts = cooccurrence(self.graph, query.seeds, query.seed_weights, seed=params.pixie.seed)
        return without_query(nodes[: params.pool], counts[: params.pool], query.nodes)
