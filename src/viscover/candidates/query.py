"""One related-items query as every candidate generator sees it: its nodes and weights, its look, whether it is cold,
and where walks start."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viscover.candidates.neighbours import VisualNeighbours
from viscover.candidates.walk import PixieParams
from viscover.graph.bipartite import Bipartite


@dataclass(frozen=True)
class CandidateParams:
    """Sizes and walk settings the generators and the query builder read."""

    pixie: PixieParams = PixieParams()
    pool: int = 200  # candidates kept from each generator
    cold_degree: int = 1  # a query set with fewer board memberships than this is "cold": seed from visual neighbours
    visual_seeds: int = 10  # visual neighbours used as extra walk seeds for cold queries


@dataclass(frozen=True, eq=False)
class CandidateQuery:
    """A query on graph nodes, prepared once for all generators."""

    nodes: np.ndarray  # the query items' nodes (int64)
    weights: np.ndarray  # one per query node (float64)
    vector: np.ndarray | None  # unit weighted mean of the query items' vectors; None without an index or vectors
    neighbours: tuple[np.ndarray, np.ndarray]  # (nodes, cosine) nearest `vector`, best first; empty without one
    cold: bool  # fewer board memberships than CandidateParams.cold_degree
    seeds: np.ndarray  # where walks start: query nodes on boards, plus warm visual neighbours of a cold query
    seed_weights: np.ndarray
    want_domain: int = -1  # domain code that walks are biased toward (-1: none)


def build_query(graph: Bipartite, visual: VisualNeighbours | None, query_nodes, weights=None,
                params: CandidateParams = CandidateParams(), want_domain: int = -1) -> CandidateQuery:
    """Prepare a query. The vector index is searched once, for pool + len(query) neighbours: the visual generator
    proposes them, and a cold query (few board memberships) also walks from its nearest items that are on boards,
    weighted by likeness, so that items nobody has saved yet still get graph-based recommendations."""
    q = np.atleast_1d(np.asarray(query_nodes, np.int64))
    w = np.ones(len(q)) if weights is None else np.atleast_1d(np.asarray(weights, np.float64))
    q_degree = graph.left_degree(q)
    cold = int(q_degree.sum()) < params.cold_degree
    vector = None if visual is None else visual.query_vector(q, w)
    seeds, seed_w = q[q_degree > 0], w[q_degree > 0]
    neighbours = (np.zeros(0, np.int64), np.zeros(0, np.float32))
    if vector is not None:
        v_nodes, v_sims = neighbours = visual.neighbours(vector, params.pool + len(q))
        if cold:
            warm = np.nonzero(~np.isin(v_nodes, q) & (graph.left_degree(v_nodes) > 0))[0][: params.visual_seeds]
            seeds = np.concatenate([seeds, v_nodes[warm]]).astype(np.int64)
            seed_w = np.concatenate([seed_w, np.clip(v_sims[warm], 0.0, None)])
    return CandidateQuery(q, w, vector, neighbours, cold, seeds, seed_w, want_domain)
