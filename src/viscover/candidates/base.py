"""What a candidate generator is: a named source of graph nodes related to a query, best first.

Every generator sees the same `CandidateQuery` (viscover.candidates.query) and `CandidateParams`, and is built from the
same `CandidateSources` (what a catalogue offers: its item graph, and the vector index on graph nodes when there is
one). Generators are listed in viscover.candidates.registry; the related-items service runs every one of them, merges
their proposals into a `CandidateSet` (one score column per generator name) and explains each result by the names of
the generators that proposed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from viscover.candidates.neighbours import VisualNeighbours
from viscover.candidates.query import CandidateParams, CandidateQuery
from viscover.graph.bipartite import Bipartite


@dataclass(frozen=True)
class CandidateSources:
    """What generators may draw on, fixed for the life of a service: the item graph, and the vector index as seen
    from graph nodes (None before the catalogue is indexed)."""

    graph: Bipartite
    visual: VisualNeighbours | None = None


class CandidateGenerator(Protocol):
    """A source of related-item candidates. `name` is the source name in explanations and the candidate set's column;
    `propose` returns (graph nodes, finite scores) best first, each node once, never a query node, at most
    `pool` + len(query nodes); both empty when the generator has nothing to say (no walk seeds, no query vector).
    Deterministic given `params.pixie.seed`. Safe to call from several threads at once (the server's
    requests): a generator keeping buffers keeps them per thread, as the walker does.
    tests/contracts/test_candidate_generators.py checks all this for every registered generator."""

    name: str

    def propose(self, query: CandidateQuery, params: CandidateParams) -> tuple[np.ndarray, np.ndarray]: ...


GeneratorFactory = Callable[[CandidateSources], CandidateGenerator]


def nothing() -> tuple[np.ndarray, np.ndarray]:
    """No candidates: (int64 nodes, float64 scores), both empty."""
    return np.zeros(0, np.int64), np.zeros(0)


def without_query(nodes: np.ndarray, scores: np.ndarray, query_nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A generator's (nodes, scores) with the query's own nodes removed (order kept)."""
    keep = ~np.isin(nodes, query_nodes)
    return np.asarray(nodes, np.int64)[keep], np.asarray(scores)[keep]
