"""Retrieval metrics over a full ranking of a gallery for each query.

Recall@K: the fraction of queries with at least one item of their label among the first K results (the metric
of the deep metric learning literature). MAP@R (Musgrave et al., 2020): with R the number of gallery items sharing
the query's label, the mean over queries of (1/R) * sum_{i<=R} precision@i * relevant(i). A query never retrieves
itself; queries with R = 0 are left out and counted. Ties in score are broken by gallery order.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

ScoreFn = Callable[[np.ndarray], np.ndarray]  # query positions -> (len, gallery) scores, higher is better


def ranking_metrics(score_block: ScoreFn, query_labels: np.ndarray, gallery_labels: np.ndarray,
                    self_index: np.ndarray | None = None, ks: Sequence[int] = (1, 5, 10),
                    block: int = 256) -> dict:
    """Recall@k for each k and MAP@R, computed block by block over the queries.

    `self_index[i]` is the gallery position of query i itself (excluded from its results) or -1.
    Labels are any comparable values (use integer codes for speed).
    """
    q_labels = np.asarray(query_labels)
    g_labels = np.asarray(gallery_labels)
    nq, ng = len(q_labels), len(g_labels)
    if self_index is None:
        self_index = np.full(nq, -1, np.int64)
    self_index = np.asarray(self_index, np.int64)
    uniq, g_codes = np.unique(g_labels, return_inverse=True)
    counts = np.bincount(g_codes, minlength=len(uniq))
    pos = np.searchsorted(uniq, q_labels)
    pos = np.clip(pos, 0, max(len(uniq) - 1, 0))
    present = (len(uniq) > 0) & (uniq[pos] == q_labels) if len(uniq) else np.zeros(nq, bool)
    r = np.where(present, counts[pos] if len(uniq) else 0, 0) - (self_index >= 0).astype(np.int64)
    hits = {k: 0 for k in ks}
    ap_sum, used = 0.0, 0
    for start in range(0, nq, block):
        rows = np.arange(start, min(nq, start + block))
        scores = np.array(score_block(rows), dtype=np.float64, copy=True)
        mine = self_index[rows] >= 0
        scores[np.nonzero(mine)[0], self_index[rows][mine]] = -np.inf
        r_blk = r[rows]
        keep = r_blk > 0
        if not keep.any():
            continue
        depth = int(min(ng, max(max(ks), r_blk.max())))
        order = _top(scores[keep], depth)
        rel = g_labels[order] == q_labels[rows][keep][:, None]
        for k in ks:
            hits[k] += int(rel[:, :k].any(axis=1).sum())
        rb = r_blk[keep]
        i = np.arange(1, depth + 1)
        within = i[None, :] <= rb[:, None]
        precision = np.cumsum(rel, axis=1) / i[None, :]
        ap_sum += float(((precision * rel * within).sum(axis=1) / rb).sum())
        used += int(keep.sum())
    out = {f"recall@{k}": (hits[k] / used if used else 0.0) for k in ks}
    out["map@r"] = ap_sum / used if used else 0.0
    out["evaluated_queries"] = used
    out["queries_without_match"] = int(nq - used)
    return out


def _top(scores: np.ndarray, depth: int) -> np.ndarray:
    """Indices of the `depth` best scores per row, best first, ties broken by lower index (exactly, also at the
    cut-off: every candidate tied with the depth-th best score is considered)."""
    n = scores.shape[1]
    if depth * 4 >= n:
        return np.argsort(-scores, axis=1, kind="stable")[:, :depth]
    kth = -np.partition(-scores, depth - 1, axis=1)[:, depth - 1]
    out = np.empty((scores.shape[0], depth), np.int64)
    for row in range(scores.shape[0]):
        cand = np.nonzero(scores[row] >= kth[row])[0]  # ascending index order
        out[row] = cand[np.argsort(-scores[row, cand], kind="stable")[:depth]]
    return out


def related_metrics(ranked: list[np.ndarray], relevant: list[np.ndarray], ks=(10, 50)) -> dict:
    """Hit-rate@k and MRR over queries, given each query's ranked nodes and its relevant nodes."""
    hits = {k: 0 for k in ks}
    rr = 0.0
    for r, rel in zip(ranked, relevant):
        found = np.nonzero(np.isin(r, rel))[0]
        for k in ks:
            hits[k] += bool(len(found) and found[0] < k)
        rr += 1.0 / (found[0] + 1) if len(found) else 0.0
    n = max(1, len(ranked))
    out = {f"hit@{k}": hits[k] / n for k in ks}
    out["mrr"] = rr / n
    return out
