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

import threading
from dataclasses import dataclass

import numpy as np
from numba import njit

from viscover.graph.bipartite import Bipartite, unique_sorted


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


# Random numbers: splitmix64 on a uint64 state kept in a register (numba's np.random is a Mersenne Twister behind a
# call and was about a quarter of the walk time), ranges by Lemire's multiply-shift with rejection (exactly uniform).
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)
_S30, _S27, _S31, _S32, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32), np.uint64(11)
_TWO32 = np.uint64(1 << 32)
_INV53 = 1.0 / 9007199254740992.0
LANES = 16  # independent walkers advanced in turn: their cache misses overlap (memory-level parallelism)


@njit(inline="always")
def _mix(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always")
def _below(state, n):
    """(new state, uniform integer in [0, n)) for 1 <= n <= 2**32."""
    n = np.uint64(n)
    state = state + _GAMMA
    m = (_mix(state) >> _S32) * n
    if (m & _LOW32) < n:  # rare: reject the few values that would bias the result
        t = (_TWO32 - n) % n
        while (m & _LOW32) < t:
            state = state + _GAMMA
            m = (_mix(state) >> _S32) * n
    return state, np.int64(m >> _S32)


@njit(inline="always")
def _uniform(state):
    """(new state, uniform float in [0, 1))."""
    state = state + _GAMMA
    return state, np.float64(_mix(state) >> _S11) * _INV53


@njit(cache=True, nogil=True)
def _walk(l_indptr, l_nbrs, r_indptr, r_nbrs, keys, query, steps, alpha, n_p, n_v, bias, want, seed,
          counts, touched, n_touched):
    """One query's walk; adds visits to `counts`, records newly visited items in `touched`.
    Returns (number of touched items, steps taken).

    The budget is walked by LANES interleaved walkers, each restarting at the query; since a walk with restarts
    is a sequence of independent excursions from the query, this gives the same visit distribution as one walker
    (up to the truncation of the last excursion of each). Each step is done in stages, each stage over every lane
    (the current items' board ranges, then the boards, their item ranges, the items, the counts): a stage's
    loads are independent of each other, so the processor has all of them in flight at once instead of one
    lane's chain of four dependent cache misses at a time (1.55x fewer ns per step at 1M items, 10M edges)."""
    state = _mix(np.uint64(seed) ^ np.uint64(0x5DEECE66D))
    if l_indptr[query + 1] == l_indptr[query]:
        return n_touched, 0
    current = np.full(LANES, query, np.int64)
    lo = np.empty(LANES, np.int64)
    hi = np.empty(LANES, np.int64)
    board = np.empty(LANES, np.int64)
    item = np.empty(LANES, np.int64)
    hits = 0
    done = 0
    while done < steps:
        lanes = min(LANES, steps - done)
        for k in range(lanes):
            lo[k] = l_indptr[current[k]]
            hi[k] = l_indptr[current[k] + 1]
        for k in range(lanes):
            state, r = _below(state, hi[k] - lo[k])
            board[k] = l_nbrs[lo[k] + r]
        for k in range(lanes):
            lo[k] = r_indptr[board[k]]
            hi[k] = r_indptr[board[k] + 1]
        for k in range(lanes):
            a, b = lo[k], hi[k]
            if bias > 0.0:
                state, u = _uniform(state)
                if u < bias:
                    wa, wb = _key_range(r_nbrs, keys, a, b, want)
                    if wb > wa:
                        a, b = wa, wb
            state, r = _below(state, b - a)
            item[k] = r_nbrs[a + r]
        for k in range(lanes):
            visited = item[k]
            seen = counts[visited]
            if seen == 0:
                touched[n_touched] = visited
                n_touched += 1
            counts[visited] = seen + 1
            if seen + 1 == n_v:
                hits += 1
                if n_p > 0 and hits >= n_p:
                    return n_touched, done + k + 1
            state, u = _uniform(state)
            # restart with probability alpha (an item reached from a board always has a board to continue from)
            current[k] = query if u < alpha else visited
        done += lanes
    return n_touched, steps


def _top_count(visits: np.ndarray, top: int) -> int:
    """The largest count that at least `top` of these visit counts reach (1 <= top <= len(visits))."""
    reaching = np.cumsum(np.bincount(visits)[::-1])  # reaching[j]: how many counts are >= max - j
    return len(reaching) - 1 - int(np.searchsorted(reaching, top))


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
    """Walks on one graph. Safe for many threads: each thread reuses visit-count buffers of its own (16 bytes per
    item, allocated on its first walk), and the compiled walk releases the GIL, so walks of concurrent requests run
    on all cores instead of queueing on one lock."""

    def __init__(self, graph: Bipartite):
        self.graph = graph
        self._local = threading.local()
        degrees = graph.left_degree()
        self.c = 1.0 + float(np.log(max(1, int(degrees.max(initial=1)))))
        self.keys = graph.left_keys if graph.left_keys is not None else np.zeros(graph.n_left, np.int32)

    def _buffers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This thread's (visit counts, touched items, boosted scores), all zero between walks."""
        local = self._local
        if not hasattr(local, "counts"):
            n = self.graph.n_left
            local.counts, local.touched, local.boost = (np.zeros(n, np.int32), np.zeros(n, np.int32),
                                                        np.zeros(n, np.float64))
        return local.counts, local.touched, local.boost

    def budget(self, queries: np.ndarray, weights: np.ndarray, steps: int) -> np.ndarray:
        """Steps per query item: N * w_q s_q / sum(w s), s_q = |E(q)| (C - log |E(q)|)."""
        degree = self.graph.left_degree(queries).astype(np.float64)
        scale = np.where(degree > 0, degree * (self.c - np.log(np.maximum(degree, 1))), 0.0)
        share = np.asarray(weights, np.float64) * scale
        if share.sum() <= 0:
            return np.zeros(len(queries), np.int64)
        exact = steps * share / share.sum()
        near = np.rint(exact)  # floor, but not one step short when rounding gives N - 1e-10 (e.g. one query)
        return np.where(np.abs(exact - near) < 1e-6, near, np.floor(exact)).astype(np.int64)

    def walk(self, queries, weights=None, params: PixieParams = PixieParams(), want_key: int = -1,
             top: int | None = None) -> Visits:
        """Multi-query Pixie: per-query walks on their share of the budget, combined by the multi-hit booster.
        With `top`, only the `top` best (the same as the first `top` of the full answer, ties by node): ordering
        the tens of thousands of items a walk touches cost more than a third of a 50k-step walk."""
        g = self.graph
        queries = np.atleast_1d(np.asarray(queries, np.int64))
        weights = np.ones(len(queries)) if weights is None else np.atleast_1d(np.asarray(weights, np.float64))
        budgets = self.budget(queries, weights, params.steps)
        counts, touched, boost = self._buffers()
        reached, total = [], 0
        for i, (q, n) in enumerate(zip(queries, budgets)):
            if n <= 0:
                continue
            n_touched, used = _walk(g.left_indptr, g.left_nbrs, g.right_indptr, g.right_nbrs, self.keys, int(q),
                                    int(n), params.alpha, params.n_p, params.n_v,
                                    params.bias if want_key >= 0 else 0.0, want_key, params.seed + 7919 * i,
                                    counts, touched, 0)
            total += used
            nodes = touched[:n_touched].copy()
            visits = counts[nodes]
            boost[nodes] += np.sqrt(visits)  # multi-hit booster: sum of square roots ...
            counts[nodes] = 0  # reset only what this walk touched
            reached.append(nodes)
        if not reached:
            return Visits(np.zeros(0, np.int64), np.zeros(0), total)
        # each walk's items are distinct: one walk's need no merging (their order comes from the sort below)
        nodes = reached[0].astype(np.int64) if len(reached) == 1 else unique_sorted(np.concatenate(reached))
        scores = boost[nodes] ** 2  # ... squared
        boost[nodes] = 0.0
        if top is not None and top < len(nodes):
            if len(reached) == 1:  # scores rank as the visit counts do: the top-th best count, from their histogram
                kept = visits >= _top_count(visits, top)  # (np.partition is slow on the many tied low counts)
            else:
                kept = scores >= np.partition(scores, len(scores) - top)[len(scores) - top]  # the top-th best
            # kept: the best `top` and whoever ties the last of them
            nodes, scores = nodes[kept], scores[kept]
        if len(reached) == 1:  # ascending, for the ties
            by_node = np.argsort(nodes)
            nodes, scores = nodes[by_node], scores[by_node]
        order = np.argsort(-scores, kind="stable")[:top]  # best first, ties by node (np.lexsort: 3x slower)
        return Visits(nodes[order], scores[order], total)
