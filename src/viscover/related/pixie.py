"""Pixie random walks (Eksombatchai et al., WWW 2018) on a bipartite item-board graph, compiled with numba.

From a query item: step to a random board of the current item, then to a random item of that board, and count
the visit; restart at the query with probability alpha after each visit. Several weighted query items share the
step budget N in proportion to w_q * s_q with s_q = |E(q)| (C - log |E(q)|) (C = 1 + log of the largest degree,
so s_q grows with the degree, but sub-linearly); their visit counts are combined by the multi-hit booster
V[p] = (sum_q sqrt(V_q[p]))^2. A walk stops early once n_p items have n_v visits. A bias sends a walk, with
probability `bias`, to the board's items whose key equals the wanted key (a contiguous range of the board's
sorted list), when there are any. Everything is deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from viscover.graph.bipartite import Bipartite


@njit(cache=True, nogil=True)
def _key_range(r_nbrs, keys, lo, hi, want):
    """[a, b) within r_nbrs[lo:hi] whose keys equal `want` (the list is sorted by key)."""
    a, b = lo, hi
    while a < b:  # first position with key >= want
        mid = (a + b) // 2
        if keys[r_nbrs[mid]] < want:
            a = mid + 1
        else:
            b = mid
    start = a
    b = hi
    while a < b:  # first position with key > want
        mid = (a + b) // 2
        if keys[r_nbrs[mid]] <= want:
            a = mid + 1
        else:
            b = mid
    return start, a


@njit(cache=True, nogil=True)
def _walk(l_indptr, l_nbrs, r_indptr, r_nbrs, keys, query, steps, alpha, n_p, n_v, bias, want, seed,
          counts, touched, n_touched):
    """One query's walk; adds visits to `counts`, records newly visited items in `touched`.
    Returns (number of touched items, steps taken)."""
    np.random.seed(seed)
    if l_indptr[query + 1] == l_indptr[query]:
        return n_touched, 0
    current = query
    hits = 0
    for step in range(steps):
        lo, hi = l_indptr[current], l_indptr[current + 1]
        board = l_nbrs[lo + np.random.randint(hi - lo)]
        lo, hi = r_indptr[board], r_indptr[board + 1]
        if bias > 0.0 and np.random.random() < bias:
            a, b = _key_range(r_nbrs, keys, lo, hi, want)
            if b > a:
                lo, hi = a, b
        item = r_nbrs[lo + np.random.randint(hi - lo)]
        if counts[item] == 0:
            touched[n_touched] = item
            n_touched += 1
        counts[item] += 1
        if counts[item] == n_v:
            hits += 1
            if n_p > 0 and hits >= n_p:
                return n_touched, step + 1
        if np.random.random() < alpha or l_indptr[item + 1] == l_indptr[item]:
            current = query
        else:
            current = item
    return n_touched, steps


@dataclass(frozen=True)
class PixieParams:
    steps: int = 100_000  # total step budget N
    alpha: float = 0.5  # restart probability after each visit (mean walk length 2 hops)
    n_p: int = 2000  # early stopping: stop once n_p items ...
    n_v: int = 4  # ... have at least n_v visits (0 disables)
    bias: float = 0.0  # probability of restricting a step to items with the wanted key
    seed: int = 0


@dataclass
class Visits:
    """Boosted visit scores of the items a walk reached (left node indices), best first, and the steps used."""

    nodes: np.ndarray
    scores: np.ndarray
    steps: int


class PixieWalker:
    """Walks on one graph, reusing one visit-count buffer (not thread-safe: one walker per thread)."""

    def __init__(self, graph: Bipartite):
        self.graph = graph
        self.counts = np.zeros(graph.n_left, np.int32)
        self.touched = np.zeros(graph.n_left, np.int32)
        self.boost = np.zeros(graph.n_left, np.float64)
        degrees = graph.left_degree()
        self.c = 1.0 + float(np.log(max(1, int(degrees.max(initial=1)))))
        self.keys = graph.left_keys if graph.left_keys is not None else np.zeros(graph.n_left, np.int32)

    def budget(self, queries: np.ndarray, weights: np.ndarray, steps: int) -> np.ndarray:
        """Steps per query item: N * w_q s_q / sum(w s), s_q = |E(q)| (C - log |E(q)|)."""
        degree = self.graph.left_degree()[queries].astype(np.float64)
        scale = np.where(degree > 0, degree * (self.c - np.log(np.maximum(degree, 1))), 0.0)
        share = np.asarray(weights, np.float64) * scale
        if share.sum() <= 0:
            return np.zeros(len(queries), np.int64)
        return np.floor(steps * share / share.sum()).astype(np.int64)

    def walk(self, queries, weights=None, params: PixieParams = PixieParams(), want_key: int = -1) -> Visits:
        """Multi-query Pixie: per-query walks on their share of the budget, combined by the multi-hit booster."""
        g = self.graph
        queries = np.atleast_1d(np.asarray(queries, np.int64))
        weights = np.ones(len(queries)) if weights is None else np.atleast_1d(np.asarray(weights, np.float64))
        budgets = self.budget(queries, weights, params.steps)
        reached, total = [], 0
        for i, (q, n) in enumerate(zip(queries, budgets)):
            if n <= 0:
                continue
            n_touched, used = _walk(g.left_indptr, g.left_nbrs, g.right_indptr, g.right_nbrs, self.keys, int(q),
                                    int(n), params.alpha, params.n_p, params.n_v,
                                    params.bias if want_key >= 0 else 0.0, want_key, params.seed + 7919 * i,
                                    self.counts, self.touched, 0)
            total += used
            nodes = self.touched[:n_touched].copy()
            self.boost[nodes] += np.sqrt(self.counts[nodes])  # multi-hit booster: sum of square roots ...
            self.counts[nodes] = 0  # reset only what this walk touched
            reached.append(nodes)
        if not reached:
            return Visits(np.zeros(0, np.int64), np.zeros(0), total)
        nodes = np.unique(np.concatenate(reached)).astype(np.int64)
        scores = self.boost[nodes] ** 2  # ... squared
        self.boost[nodes] = 0.0
        order = np.lexsort((nodes, -scores))
        return Visits(nodes[order], scores[order], total)
