"""Related items for one item or a set of items, on graph nodes: query -> candidates of every registered generator
(Pixie, co-occurrence, visual) -> the query's copies and near-duplicates removed -> features -> ranker -> top k with
explanations."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from viscover.candidates.base import CandidateSources
from viscover.candidates.candidate_set import CandidateSet
from viscover.candidates.features import VISUAL, Features, features
from viscover.candidates.neighbours import VisualNeighbours
from viscover.candidates.query import CandidateQuery, build_query
from viscover.candidates.registry import build_generators
from viscover.errors import BadRequestError
from viscover.graph.attributes import ItemAttributes
from viscover.graph.bipartite import Bipartite
from viscover.rank.base import Ranker
from viscover.rank.heuristic import HeuristicRanker
from viscover.related.params import RelatedParams


@dataclass
class RelatedResult:
    """Ranked graph nodes with their scores, who proposed each (per generator name) and their feature rows."""

    nodes: np.ndarray
    scores: np.ndarray
    sources: dict[str, np.ndarray]  # generator name -> bool per result
    features: Features
    cold: bool
    seeds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def explain(self, i: int) -> dict:
        """Why the i-th result is there: the generators that proposed it and its feature values (4 places)."""
        return {"sources": [name for name, mask in self.sources.items() if mask[i]],
                "features": {name: round(float(v), 4) for name, v in zip(self.features.names, self.features.matrix[i])}}


class RelatedItems:
    """Related items on one graph, with the vector index (if any), item attributes, image ids and a ranker."""

    def __init__(self, graph: Bipartite, visual: VisualNeighbours | None = None,
                 attrs: ItemAttributes | None = None, image_of: np.ndarray | None = None,
                 ranker: Ranker = HeuristicRanker(), params: RelatedParams = RelatedParams()):
        self.graph, self.visual, self.attrs, self.ranker, self.params = graph, visual, attrs, ranker, params
        self.image_of = image_of  # image id per node: exact duplicates share one
        self.domain_names: list[str] = []  # domain name by code (graph.left_keys), when built from a catalogue
        self.generators = build_generators(CandidateSources(graph, visual))

    def on_graph(self, graph: Bipartite, ranker: Ranker = HeuristicRanker()) -> "RelatedItems":
        """The same service on another graph over the same nodes (e.g. with memberships hidden, to train on)."""
        visual = None if self.visual is None else VisualNeighbours(graph, self.visual.index)
        return RelatedItems(graph, visual, self.attrs, self.image_of, ranker, self.params)

    def related(self, query_nodes, weights=None, k: int = 10, want_domain: int = -1,
                score_by: str = "blend") -> RelatedResult:
        """Top-k related nodes. `score_by` "blend" uses the ranker; a generator name ("pixie", "cooccurrence" or
        "visual") ranks what that generator proposed by its own signal (the baselines of `viscover eval-related`)."""
        cands, query = self.candidates(query_nodes, weights, want_domain)
        x = features(cands, self.graph, query.nodes, self.attrs)
        if score_by == "blend":
            score = self.ranker.score(x, cold=query.cold)
        else:
            name = self._generator_name(score_by)
            score = np.where(cands.proposed[name], cands.scores[name], -np.inf)
        order = np.lexsort((cands.nodes, -score))[:k]
        order = order[np.isfinite(score[order])]
        return RelatedResult(cands.nodes[order], score[order], {n: m[order] for n, m in cands.proposed.items()},
                             x.rows(order), query.cold, query.seeds)

    def features_for(self, query_nodes, candidate_nodes, weights=None, want_domain: int = -1) -> Features:
        """Feature rows for given candidates of a query, as `related` would compute them: candidates the generators
        did not propose get zero walk and co-occurrence signals, and walk and co-occurrence are normalised by the
        maxima over the full candidate set. For training rankers on logged (query, shown item) pairs."""
        cands, query = self.candidates(query_nodes, weights, want_domain)
        wanted = np.asarray(candidate_nodes, np.int64)
        logged = cands.at(wanted)
        logged.scores[VISUAL] = self._looks(wanted, query)
        return features(logged, self.graph, query.nodes, self.attrs, maxima=cands.maxima())

    def query(self, query_nodes, weights=None, want_domain: int = -1) -> CandidateQuery:
        """The query as the generators see it (nodes, weights, vector, cold flag, walk seeds)."""
        return build_query(self.graph, self.visual, query_nodes, weights, self.params.candidates, want_domain)

    def candidates(self, query_nodes, weights=None,
                   want_domain: int = -1) -> tuple[CandidateSet, CandidateQuery]:
        """(candidates, the prepared query): every generator's proposals merged, minus items showing the query's
        image and near-duplicates of its look; the visual column then holds every candidate's similarity to the
        query (looks are known for any indexed item, not only for those the visual generator proposed)."""
        query = self.query(query_nodes, weights, want_domain)
        p = self.params.candidates
        parts = {g.name: g.propose(query, p) for g in self.generators}
        cands = CandidateSet.merge(parts, [g.name for g in self.generators])
        if self.image_of is not None:  # exact copies of a query image
            cands = cands.drop(np.isin(self.image_of[cands.nodes], self.image_of[query.nodes]))
        if query.vector is not None and len(cands):
            sims = self._looks(cands.nodes, query)
            cands.scores[VISUAL] = sims
            cands = cands.drop(sims > 1.0 - self.params.dedup_threshold)  # near-duplicates of the query
        return cands, query

    def _looks(self, nodes: np.ndarray, query: CandidateQuery) -> np.ndarray:
        """Cosine similarity of each node to the query's vector (0 where unknown, all 0 without a vector)."""
        if query.vector is None:
            return np.zeros(len(nodes))
        return self.visual.similarity(nodes, query.vector)

    def _generator_name(self, score_by: str) -> str:
        """The generator `score_by` names (its name, or its name without hyphens: "cooccurrence")."""
        for g in self.generators:
            if score_by in (g.name, g.name.replace("-", "")):
                return g.name
        known = ", ".join(["blend"] + [g.name.replace("-", "") for g in self.generators])
        raise BadRequestError(f"unknown score_by {score_by!r} (one of {known})")
