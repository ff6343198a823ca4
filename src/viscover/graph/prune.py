"""Graph pruning (Pixie, section 5): drop incoherent or very broad boards, and the edges of popular items to boards
unrelated to them. Coherence is measured on the items' embeddings: the length of the mean of the members' unit
vectors (1 when all members look alike, near 0 when they point every way)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viscover.graph.bipartite import Bipartite


@dataclass(frozen=True)
class PruneParams:
    min_coherence: float = 0.0  # drop boards whose members' mean unit vector is shorter than this (0: keep all)
    max_board_size: int = 0  # drop boards with more members than this (0: no limit)
    popular_degree: int = 0  # items on more boards than this keep only their most similar boards (0: off)
    popular_keep: float = 0.5  # ... this fraction of them (at least popular_degree)

    @property
    def active(self) -> bool:
        return bool(self.min_coherence > 0 or self.max_board_size > 0 or self.popular_degree > 0)


def prune_params_of(settings) -> PruneParams:
    return PruneParams(min_coherence=settings.prune_min_coherence, max_board_size=settings.prune_max_board,
                       popular_degree=settings.prune_popular_degree)


@dataclass
class PruneReport:
    boards_dropped: int = 0
    edges_before: int = 0
    edges_after: int = 0


def board_coherence(graph: Bipartite, unit: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coherence per board, centroid unit vector per board) from member unit vectors (`present` marks members
    that have a vector; boards without any get coherence 1 and a zero centroid: nothing to judge them by)."""
    li, ri = graph.edges()
    has = present[li]
    sums = np.zeros((graph.n_right, unit.shape[1]), np.float64)
    np.add.at(sums, ri[has], unit[li[has]])
    counts = np.bincount(ri[has], minlength=graph.n_right)
    mean = sums / np.maximum(counts, 1)[:, None]
    norm = np.linalg.norm(mean, axis=1)
    coherence = np.where(counts > 0, norm, 1.0)
    centroid = mean / np.maximum(norm, 1e-12)[:, None]
    return coherence, centroid


def prune(graph: Bipartite, unit: np.ndarray, present: np.ndarray,
          params: PruneParams) -> tuple[Bipartite, PruneReport]:
    """A pruned copy of `graph`. `unit`: (n_left, d) unit vectors per item node (rows of absent nodes unused)."""
    report = PruneReport(edges_before=graph.n_edges)
    if not params.active:
        report.edges_after = graph.n_edges
        return graph, report
    coherence, centroid = board_coherence(graph, unit, present)
    size = graph.right_degree()
    drop_board = np.zeros(graph.n_right, bool)
    if params.min_coherence > 0:
        drop_board |= (coherence < params.min_coherence) & (size > 1)
    if params.max_board_size > 0:
        drop_board |= size > params.max_board_size
    li, ri = graph.edges()
    keep = ~drop_board[ri]
    if params.popular_degree > 0:
        degree = np.bincount(li[keep], minlength=graph.n_left)
        for node in np.nonzero(degree > params.popular_degree)[0]:
            if not present[node]:
                continue
            span = np.arange(graph.left_indptr[node], graph.left_indptr[node + 1])  # edges() is in left-CSR order
            mine = span[keep[span]]
            similarity = centroid[ri[mine]] @ unit[node]
            n_keep = max(params.popular_degree, int(np.ceil(params.popular_keep * len(mine))))
            keep[mine[np.argsort(-similarity, kind="stable")[n_keep:]]] = False
    keys = None if graph.left_keys is None else {int(i): int(k) for i, k in zip(graph.left_ids, graph.left_keys)}
    pruned = Bipartite.from_edges(graph.name, graph.left_ids[li[keep]], graph.right_ids[ri[keep]],
                                  left_ids=graph.left_ids, right_ids=graph.right_ids, left_keys=keys)
    report.boards_dropped = int(drop_board.sum())
    report.edges_after = pruned.n_edges
    return pruned, report
