"""Random-walk neighbourhoods: each item's top-T items by Pixie visit count, weighted by normalised visits.

PinSage pools over these instead of the raw board neighbours, so that a hub board does not flood an item with
thousands of loosely related neighbours, and the weights say how close each neighbour is. The same walks also
give the visit ranking from which hard negatives are drawn (a band below the top of the ranking).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from viscover.candidates.walk import _walk
from viscover.graph.bipartite import Bipartite


@dataclass
class Neighbourhoods:
    """Per item node: its neighbours (-1 padding where fewer than T) and their importance weights (sum 1, or 0)."""

    index: np.ndarray  # (n, T) int32
    weight: np.ndarray  # (n, T) float32

    @property
    def size(self) -> int:
        return self.index.shape[1]


@njit(cache=True, nogil=True)
def _ranked_walks(l_indptr, l_nbrs, r_indptr, r_nbrs, nodes, steps, alpha, seed, top, band_lo, band_hi,
                  band_min, band_max, pool):
    """For each node: its `top` most visited other items (ties by node) with their counts, and `pool` items spread
    evenly over the ranks [lo, hi) of its ranking, lo = clip(band_lo * reached, band_min, ...), hi likewise."""
    n = len(l_indptr) - 1
    m = len(nodes)
    keys = np.zeros(n, np.int32)
    counts = np.zeros(n, np.int32)
    touched = np.zeros(n, np.int32)
    top_index = np.full((m, top), -1, np.int32)
    top_count = np.zeros((m, top), np.int32)
    band = np.full((m, pool), -1, np.int32)
    for i in range(m):
        q = nodes[i]
        n_touched, _ = _walk(l_indptr, l_nbrs, r_indptr, r_nbrs, keys, q, steps, alpha, 0, 0, 0.0, -1,
                             seed * 1_000_003 + q, counts, touched, 0)
        order = np.empty(n_touched, np.int64)
        k = 0
        for j in range(n_touched):
            v = touched[j]
            if v != q:  # the query itself is not its own neighbour
                order[k] = -np.int64(counts[v]) * (n + 1) + v  # by count descending, then node
                k += 1
        order = np.sort(order[:k])
        for j in range(min(top, k)):
            v = order[j] % (n + 1)
            top_index[i, j] = v
            top_count[i, j] = counts[v]
        if pool > 0 and k > 0:
            lo = min(max(int(band_lo * k), band_min), k - 1)
            hi = min(max(int(band_hi * k), lo + 1), band_max, k)
            if hi > lo:
                for j in range(pool):
                    band[i, j] = order[lo + (j * (hi - lo)) // pool] % (n + 1)
        for j in range(n_touched):
            counts[touched[j]] = 0
    return top_index, top_count, band


def walk_neighbourhoods(graph: Bipartite, size: int = 10, *, steps: int = 200, alpha: float = 0.5,
                        seed: int = 0) -> Neighbourhoods:
    """Top-`size` neighbours of every item node by visit count of `steps` Pixie steps from it (seeded)."""
    index, count, _ = _walks(graph, size, steps, alpha, seed, 0.0, 0.0, 0, 0, 0)
    total = count.sum(axis=1, keepdims=True).astype(np.float64)
    weight = np.where(total > 0, count / np.maximum(total, 1), 0.0).astype(np.float32)
    return Neighbourhoods(index, weight)


def visit_bands(graph: Bipartite, *, steps: int = 2000, alpha: float = 0.5, seed: int = 0,
                band: tuple[float, float] = (0.1, 0.3), band_min: int = 10, band_max: int = 5000,
                pool: int = 32) -> np.ndarray:
    """(n, pool) int32: items spread over a band of each item's visit ranking (-1 where it reached too few).

    The paper draws hard negatives from personalised-PageRank ranks 2000-5000 of a huge graph; on a small graph
    the band is the relative one `band` of the reached items (starting after at least `band_min`), capped at
    rank `band_max`."""
    _, _, pools = _walks(graph, 1, steps, alpha, seed + 1, band[0], band[1], band_min, band_max, pool)
    return pools


def _walks(graph: Bipartite, top, steps, alpha, seed, band_lo, band_hi, band_min, band_max, pool):
    nodes = np.arange(graph.n_left, dtype=np.int64)
    return _ranked_walks(graph.left_indptr, graph.left_nbrs, graph.right_indptr, graph.right_nbrs, nodes,
                         int(steps), float(alpha), int(seed), int(top), float(band_lo), float(band_hi),
                         int(band_min), int(band_max), int(pool))
