"""The Pixie generator: items that random walks from the query's seeds visit most (viscover.candidates.walk)."""

from __future__ import annotations

import numpy as np

from viscover.candidates.base import CandidateSources, nothing, without_query
from viscover.candidates.query import CandidateParams, CandidateQuery
from viscover.candidates.walk import PixieParams, PixieWalker, Visits

__all__ = ["PixieCandidates", "PixieParams", "PixieWalker", "Visits"]


class PixieCandidates:
    """Walk from the query's seeds (biased toward its wanted domain); score = boosted visit count. Thread-safe (the
    walker keeps its visit buffers per thread)."""

    name = "pixie"

    def __init__(self, sources: CandidateSources):
        self.walker = PixieWalker(sources.graph)

    def propose(self, query: CandidateQuery, params: CandidateParams) -> tuple[np.ndarray, np.ndarray]:
        """The `pool` most visited items (the query's own nodes dropped after the cut, as the service always did)."""
        if not len(query.seeds):
            return nothing()
        visits = self.walker.walk(query.seeds, query.seed_weights, params.pixie, want_key=query.want_domain,
                                  top=params.pool)
        return without_query(visits.nodes[: params.pool], visits.scores[: params.pool], query.nodes)
