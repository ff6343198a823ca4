"""Bipartite graphs (item-board, item-user, ...) in compact CSR arrays, built from the catalogue and pruned."""

from viscover.graph.bipartite import Bipartite

__all__ = ["Bipartite"]
