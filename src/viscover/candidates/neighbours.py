"""The vector index as the related-items machinery sees it: vectors and nearest neighbours of graph nodes."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from viscover.graph.bipartite import Bipartite
from viscover.index import Query


class NodeVectorIndex(Protocol):
    """What related items need from a vector index (viscover.index.VectorIndex or any other backend): its
    dimension, which items it holds, their stored unit vectors, and an inner-product search by float vector."""

    dim: int

    def contains(self, item_ids: np.ndarray) -> np.ndarray: ...

    def stored_floats(self, item_ids: np.ndarray) -> np.ndarray: ...

    def search(self, query: Query, k: int): ...  # -> Hits (ids, scores), best first


class VisualNeighbours:
    """What the related-items service needs from the vector index, on graph nodes."""

    def __init__(self, graph: Bipartite, index: NodeVectorIndex):
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

    def query_vector(self, nodes: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
        """The unit-length weighted mean of the nodes' vectors (None when none of them is indexed)."""
        present, vecs = self.vectors(nodes)
        if not present.any():
            return None
        mean = (vecs * weights[present, None]).sum(0)
        return (mean / max(np.linalg.norm(mean), 1e-12)).astype(np.float32)

    def similarity(self, nodes: np.ndarray, query_vector: np.ndarray) -> np.ndarray:
        """Cosine similarity of each node's vector to a unit query vector, 0 for nodes not in the index."""
        present, vecs = self.vectors(nodes)
        sims = np.zeros(len(nodes))
        sims[present] = vecs @ query_vector
        return sims
