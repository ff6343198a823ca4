"""Hiding board memberships: the held-out edges that related-items evaluation and board-supervised rankers use."""

from __future__ import annotations

import numpy as np

from viscover.graph.bipartite import Bipartite


def hidden_memberships(graph: Bipartite, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(item node, board node) pairs to hide: n items with boards, one of their boards each, seeded."""
    rng = np.random.default_rng(seed)
    candidates = np.nonzero(graph.left_degree() > 0)[0]
    chosen = np.sort(rng.choice(candidates, size=min(n, len(candidates)), replace=False))
    boards = np.array([rng.choice(graph.groups_of(int(i))) for i in chosen], np.int64)
    return chosen, boards
