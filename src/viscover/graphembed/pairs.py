"""Training pairs: positives from board co-membership (capped per board), hard negatives from a visit-rank band.

Positives are drawn on the graph the caller gives (its training graph: held-out memberships already removed), at
most `cap` pairs per board per epoch so that a few hub boards do not dominate. Validation pairs are set aside once
and filtered out of every epoch's pairs (in both directions), so they are never trained on.
"""

from __future__ import annotations

import numpy as np

from viscover.graph.bipartite import Bipartite


def board_pairs(graph: Bipartite, cap: int, rng: np.random.Generator) -> np.ndarray:
    """(m, 2) int64 (query, positive) item pairs sharing a board: min(cap, s (s - 1)) per board of s >= 2 items."""
    size = graph.right_degree()
    count = np.where(size >= 2, np.minimum(cap, size * (size - 1)), 0)
    board = np.repeat(np.arange(graph.n_right), count)
    s = size[board]
    a = (rng.random(len(board)) * s).astype(np.int64)
    b = (rng.random(len(board)) * (s - 1)).astype(np.int64)
    b += b >= a  # a different member
    start = graph.right_indptr[board]
    return np.stack([graph.right_nbrs[start + a], graph.right_nbrs[start + b]], axis=1).astype(np.int64)


def walk_pairs(index: np.ndarray, weight: np.ndarray, per_item: int, rng: np.random.Generator) -> np.ndarray:
    """(m, 2) int64 (query, positive) pairs from random-walk co-visits (PinSage's own positives): for every item
    with a walk neighbourhood, `per_item` positives drawn from its top visited items with probability
    proportional to their visit share (`index`, `weight` as in Neighbourhoods)."""
    items = np.nonzero(index[:, 0] >= 0)[0]
    if len(items) == 0 or per_item <= 0:
        return np.zeros((0, 2), np.int64)
    cdf = np.cumsum(weight[items], axis=1, dtype=np.float64)
    cdf /= np.maximum(cdf[:, -1:], 1e-12)
    u = rng.random((len(items), per_item))
    col = np.minimum((u[:, :, None] > cdf[:, None, :]).sum(-1), index.shape[1] - 1)
    pos = index[items[:, None], col]
    q = np.repeat(items, per_item)
    pos = pos.reshape(-1)
    keep = pos >= 0
    return np.stack([q[keep], pos[keep]], axis=1).astype(np.int64)


def pair_codes(pairs: np.ndarray, n: int) -> np.ndarray:
    """Direction-free int64 code of each pair (min * n + max)."""
    return np.minimum(pairs[:, 0], pairs[:, 1]) * n + np.maximum(pairs[:, 0], pairs[:, 1])


def without_pairs(pairs: np.ndarray, held: np.ndarray, n: int) -> np.ndarray:
    """The pairs that are not held out (in either direction)."""
    return pairs[~np.isin(pair_codes(pairs, n), pair_codes(held, n))]


def hard_negatives(bands: np.ndarray, queries: np.ndarray, positives: np.ndarray, count: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(B, count) hard negatives per query drawn from its visit band, and a mask of the usable ones (a band
    shorter than the pool is -1 padded; the positive itself is never its query's negative)."""
    if count <= 0 or bands.shape[1] == 0:
        return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), bool)
    pick = rng.integers(0, bands.shape[1], size=(len(queries), count))
    negs = bands[np.asarray(queries)[:, None], pick].astype(np.int64)
    mask = (negs >= 0) & (negs != np.asarray(positives)[:, None]) & (negs != np.asarray(queries)[:, None])
    return np.where(mask, negs, 0), mask
