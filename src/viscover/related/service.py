"""Related items for one item or a set of items: seeds -> candidates (Pixie, co-occurrence, visual) -> features ->
score (learned ranker, else heuristic) -> the query and its duplicates removed -> top k with explanations."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from viscover.graph.bipartite import Bipartite
from viscover.index import Query
from viscover.related.candidates import (COOCCURRENCE, FEATURES, PIXIE, SOURCE_NAMES, VISUAL, CandidateSet,
                                         ItemAttributes, cooccurrence, features, heuristic_score)
from viscover.related.pixie import PixieParams, PixieWalker


@dataclass(frozen=True)
class RelatedParams:
    pixie: PixieParams = PixieParams()
    pool: int = 200  # candidates kept from each generator
    cold_degree: int = 1  # a query set with fewer board memberships than this is "cold": seed from visual neighbours
    visual_seeds: int = 10  # visual neighbours used as extra walk seeds for cold queries
    dedup_threshold: float = 0.05  # candidates this close to the query (cosine distance) are its near-duplicates


@dataclass
class RelatedHit:
    """One related item with its score and why it was proposed (generators and feature values)."""

    item: object  # viscover.catalog.records.Item
    score: float
    explanation: dict

    def to_dict(self, explain: bool = False) -> dict:
        out = {"score": round(float(self.score), 6), **self.item.to_dict()}
        if explain:
            out["explanation"] = self.explanation
        return out


@dataclass
class RelatedResult:
    """Ranked graph nodes with their scores, sources and feature rows (for explanations)."""

    nodes: np.ndarray
    scores: np.ndarray
    sources: np.ndarray
    features: np.ndarray
    cold: bool
    seeds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def explain(self, i: int) -> dict:
        return {"sources": [name for flag, name in SOURCE_NAMES.items() if self.sources[i] & flag],
                "features": {name: round(float(v), 4) for name, v in zip(FEATURES, self.features[i])}}


class VisualNeighbours:
    """What the related-items service needs from the vector index, on graph nodes."""

    def __init__(self, graph: Bipartite, index):
        self.graph, self.index = graph, index

    def vectors(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of nodes in the index, their float vectors)."""
        ids = self.graph.left_ids[nodes]
        present = self.index.contains(ids)
        vecs = self.index.stored_floats(ids[present]) if present.any() else np.zeros((0, self.index.dim), np.float32)
        return present, vecs

    def unit_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(unit vector per graph node (zeros where absent), presence mask): for pruning by coherence."""
        present, vecs = self.vectors(np.arange(self.graph.n_left))
        unit = np.zeros((self.graph.n_left, self.index.dim), np.float32)
        unit[present] = vecs
        return unit, present

    def neighbours(self, query_vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest indexed items that are graph nodes (float search: no sign bits needed)."""
        hits = self.index.search(Query(floats=query_vector), k)
        nodes = self.graph.left_index(hits.ids)
        keep = nodes >= 0
        return nodes[keep], hits.scores[keep]


class RelatedItems:
    def __init__(self, graph: Bipartite, visual: VisualNeighbours | None = None,
                 attrs: ItemAttributes | None = None, image_of: np.ndarray | None = None, ranker=None,
                 params: RelatedParams = RelatedParams()):
        self.graph, self.visual, self.attrs, self.ranker, self.params = graph, visual, attrs, ranker, params
        self.image_of = image_of  # image id per node: exact duplicates share one
        self.domain_names: list[str] = []  # domain name by code (graph.left_keys), when built from a catalogue
        self.walker = PixieWalker(graph)

    def related(self, query_nodes, weights=None, k: int = 10, want_domain: int = -1,
                score_by: str = "blend") -> RelatedResult:
        """Top-k related nodes. `score_by` "blend" uses the ranker (or the heuristic); "pixie", "cooccurrence" or
        "visual" rank by that single signal (the baselines of `viscover eval-related`)."""
        cands, q, cold, seeds = self.candidates(query_nodes, weights, want_domain)
        x = features(cands, self.graph, q, self.attrs)
        if score_by == "blend":
            score = self.ranker.score(x) if self.ranker is not None else heuristic_score(x, cold)
        else:
            flag = {"pixie": PIXIE, "cooccurrence": COOCCURRENCE, "visual": VISUAL}[score_by]
            raw = {PIXIE: cands.pixie, COOCCURRENCE: cands.cooccurrence, VISUAL: cands.visual}[flag]
            score = np.where(cands.sources & flag, raw, -np.inf)
        order = np.lexsort((cands.nodes, -score))[:k]
        order = order[np.isfinite(score[order])]
        return RelatedResult(cands.nodes[order], score[order], cands.sources[order], x[order], cold, seeds)

    def features_for(self, query_nodes, candidate_nodes, weights=None, want_domain: int = -1) -> np.ndarray:
        """Feature rows (FEATURES order) for given candidates of a query, as `related` would compute them:
        candidates the generators did not propose get zero walk and co-occurrence signals. For training rankers
        on logged (query, shown item) pairs."""
        cands, q, _, _ = self.candidates(query_nodes, weights, want_domain)
        wanted = np.asarray(candidate_nodes, np.int64)
        pixie, cooc = np.zeros(len(wanted)), np.zeros(len(wanted))
        if len(cands):
            pos = np.minimum(np.searchsorted(cands.nodes, wanted), len(cands) - 1)
            known = cands.nodes[pos] == wanted
            pixie[known], cooc[known] = cands.pixie[pos[known]], cands.cooccurrence[pos[known]]
        # (sources are not a feature)
        merged = CandidateSet(wanted, pixie, cooc, np.zeros(len(wanted)), np.zeros(len(wanted), np.uint8))
        query_vec = self._query_vector(q, self._weights(q, weights))
        if query_vec is not None:
            c_present, c_vecs = self.visual.vectors(wanted)
            merged.visual[c_present] = c_vecs @ query_vec
        # normalise walk/co-occurrence by the maxima over the full candidate set, as `related` does
        x = features(merged, self.graph, q, self.attrs)
        x[:, 0] = merged.pixie / max(float(cands.pixie.max(initial=0.0)), 1e-12)
        x[:, 2] = merged.cooccurrence / max(float(cands.cooccurrence.max(initial=0.0)), 1e-12)
        return x

    def candidates(self, query_nodes, weights=None, want_domain: int = -1):
        """(candidates, query nodes, cold?, walk seeds). Cold queries (few board memberships) also walk from their
        visual neighbours, so that items nobody has saved yet still get graph-based recommendations."""
        p = self.params
        q = np.atleast_1d(np.asarray(query_nodes, np.int64))
        w = self._weights(q, weights)
        degree = self.graph.left_degree()
        cold = int(degree[q].sum()) < p.cold_degree
        query_vec = self._query_vector(q, w)
        parts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        seeds, seed_w = q[degree[q] > 0], w[degree[q] > 0]
        if query_vec is not None:
            v_nodes, v_sims = self.visual.neighbours(query_vec, p.pool + len(q))
            parts[VISUAL] = (v_nodes, v_sims)
            if cold:
                warm = np.nonzero(~np.isin(v_nodes, q) & (degree[v_nodes] > 0))[0][: p.visual_seeds]
                seeds = np.concatenate([seeds, v_nodes[warm]]).astype(np.int64)
                seed_w = np.concatenate([seed_w, np.clip(v_sims[warm], 0.0, None)])
        if len(seeds):
            visits = self.walker.walk(seeds, seed_w, p.pixie, want_key=want_domain)
            parts[PIXIE] = (visits.nodes[: p.pool], visits.scores[: p.pool])
            c_nodes, c_counts = cooccurrence(self.graph, seeds, seed_w, seed=p.pixie.seed)
            parts[COOCCURRENCE] = (c_nodes[: p.pool], c_counts[: p.pool])
        cands = CandidateSet.merge(parts)
        cands = cands.drop(np.isin(cands.nodes, q))
        if self.image_of is not None:  # exact copies of a query image
            cands = cands.drop(np.isin(self.image_of[cands.nodes], self.image_of[q]))
        if query_vec is not None and len(cands):
            present, vecs = self.visual.vectors(cands.nodes)
            sims = np.zeros(len(cands))
            sims[present] = vecs @ query_vec
            cands.visual = sims
            cands = cands.drop(sims > 1.0 - p.dedup_threshold)  # near-duplicates of the query
        return cands, q, cold, seeds

    @staticmethod
    def _weights(q: np.ndarray, weights) -> np.ndarray:
        return np.ones(len(q)) if weights is None else np.atleast_1d(np.asarray(weights, np.float64))

    def _query_vector(self, q: np.ndarray, w: np.ndarray) -> np.ndarray | None:
        """The unit-length weighted mean of the query items' vectors (None without an index or indexed items)."""
        if self.visual is None:
            return None
        present, vecs = self.visual.vectors(q)
        if not present.any():
            return None
        mean = (vecs * w[present, None]).sum(0)
        return (mean / max(np.linalg.norm(mean), 1e-12)).astype(np.float32)
