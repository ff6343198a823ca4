"""The visual generator: the items that look most like the query (nearest neighbours in the vector index)."""

from __future__ import annotations

import numpy as np

from viscover.candidates.base import CandidateSources, nothing, without_query
from viscover.candidates.query import CandidateParams, CandidateQuery


class VisualCandidates:
    """The query vector's nearest indexed items, scored by cosine similarity. The index is searched once per query
    when it is prepared (viscover.candidates.query), since cold queries also walk from these neighbours."""

    name = "visual"

    def __init__(self, sources: CandidateSources):
        """Nothing to keep: the prepared query carries the neighbours."""

    def propose(self, query: CandidateQuery, params: CandidateParams) -> tuple[np.ndarray, np.ndarray]:
        """The query's pool + len(query) nearest neighbours minus the query's own nodes; nothing without a vector."""
        if query.vector is None:
            return nothing()
        nodes, sims = query.neighbours
        return without_query(nodes, sims, query.nodes)
