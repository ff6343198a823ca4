"""Seeded synthetic item-board graphs: power-law board sizes and item popularities, planted communities.

Model (all vectorised numpy, deterministic for a seed):

  * items 0..n_items-1 are split into `n_communities` communities of (almost) equal size at random; within each
    community, item popularities follow Zipf's law over a random ranking: the r-th most popular item of a
    community has weight r ** -item_exponent. Every community thus has its own head and tail, and the overall
    popularity is Zipf-like too (the r-th most popular item overall has weight ~ (r / n_communities) ** -exponent).
    (A single global Zipf ranking would let the top few items swamp their communities' boards.);
  * boards 0..n_boards-1 each belong to a community drawn uniformly; board sizes follow Zipf's law over a random
    ranking of the boards: the r-th largest board has about c * r ** -board_exponent slots (stochastic rounding,
    at least 1), with c such that the slots add up to n_edges. For an exponent s < 1 the size distribution has a
    power-law tail P(size >= k) ~ k ** (-1/s);
  * every slot of a board draws one item: with probability p_in from the board's own community, otherwise from
    all items, popularity-weighted in both cases (inverse-CDF sampling on cumulative popularities);
  * duplicates (the same item twice on a board) are removed, and a few top-up rounds draw extra slots (boards in
    proportion to their planned size) until the unique edges reach n_edges; the last round's surplus new edges are
    dropped at random, so the graph has exactly n_edges edges unless the boards saturate.

Memory stays bounded: slots are drawn in chunks, and only unique int64 edge codes (board * n_items + item) are kept.
At 1M items, 200k boards and 10M edges generation plus `Bipartite.from_edges` takes seconds and < 1 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viscover.graph.bipartite import Bipartite, unique_sorted

CHUNK = 2_000_000  # slots drawn per chunk (bounds temporary memory)


@dataclass
class SyntheticGraph:
    graph: Bipartite  # left = items (index == item id), right = boards (index == board id)
    item_community: np.ndarray  # int32 community of each item
    board_community: np.ndarray  # int32 community of each board
    item_popularity: np.ndarray  # float64 sampling weight of each item (sums to 1)
    planned_board_size: np.ndarray  # int64 slots first drawn per board (before duplicate removal and top-up)
    params: dict

    @property
    def n_edges(self) -> int:
        return self.graph.n_edges

    def community_looks(self, dim: int, noise: float, seed: int) -> np.ndarray:
        """(items, dim) float32 "visual" vectors: each item's community centre (seeded N(0, I)) plus N(0, noise^2)
        noise, so that looks say something about the graph's communities but not all."""
        rng = np.random.default_rng(seed)
        centres = rng.normal(size=(self.params["n_communities"], dim)).astype(np.float32)
        return centres[self.item_community] + noise * rng.normal(size=(len(self.item_community), dim)).astype(
            np.float32)


def _zipf_shape(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """rank ** -exponent over a random ranking of n elements."""
    return (rng.permutation(n) + 1.0) ** -float(exponent)


def synthetic_graph(n_items: int, n_boards: int, n_edges: int, n_communities: int, p_in: float = 0.8,
                    seed: int = 0, item_exponent: float = 0.9, board_exponent: float = 0.5,
                    name: str = "synthetic", max_rounds: int = 8) -> SyntheticGraph:
    """A power-law item-board graph with planted communities (see the module docstring)."""
    if min(n_items, n_boards, n_communities) < 1 or n_edges < 0:
        raise ValueError("n_items, n_boards, n_communities must be >= 1 and n_edges >= 0")
    if n_communities > n_items:
        raise ValueError("more communities than items")
    if not 0.0 <= p_in <= 1.0:
        raise ValueError("p_in must be in [0, 1]")
    rng = np.random.default_rng([seed, 0x5EED])

    # items: a random order deals items round-robin to communities; the m-th item dealt to a community has
    # popularity (m + 1) ** -item_exponent, so each community has its own Zipf head and the overall popularity is
    # Zipf in the global rank too (ties of n_communities items)
    deal = rng.permutation(n_items)
    item_community = np.empty(n_items, np.int32)
    item_community[deal] = np.arange(n_items) % n_communities
    pop = np.empty(n_items)
    pop[deal] = (np.arange(n_items) // n_communities + 1.0) ** -float(item_exponent)
    pop /= pop.sum()
    cum_all = np.cumsum(pop)
    by_comm = np.argsort(item_community, kind="stable").astype(np.int64)  # items grouped by community
    cum_comm = np.cumsum(pop[by_comm])
    comm_start = np.searchsorted(item_community[by_comm], np.arange(n_communities + 1))
    comm_lo = np.concatenate([[0.0], cum_comm])[comm_start[:-1]]  # cumulative popularity before each community
    comm_hi = cum_comm[comm_start[1:] - 1]

    # boards: uniform communities, Zipf sizes scaled to n_edges slots
    board_community = rng.integers(0, n_communities, n_boards).astype(np.int32)
    shape = _zipf_shape(n_boards, board_exponent, rng)
    exact = shape * (n_edges / shape.sum())
    sizes = np.floor(exact).astype(np.int64)
    sizes += rng.random(n_boards) < (exact - sizes)
    np.maximum(sizes, 1, out=sizes)
    cum_sizes = np.cumsum(sizes)

    def draw(boards: np.ndarray) -> np.ndarray:
        """Unique edge codes board * n_items + item for one item slot on each of `boards`."""
        m = len(boards)
        comm = board_community[boards]
        u = rng.random(m)
        inside = rng.random(m) < p_in
        items = np.empty(m, np.int64)
        if inside.any():  # popularity-weighted within the board's community
            c = comm[inside]
            lo, hi = comm_lo[c], comm_hi[c]
            pos = np.searchsorted(cum_comm, lo + u[inside] * (hi - lo), side="right")
            pos = np.clip(pos, comm_start[c], comm_start[c + 1] - 1)
            items[inside] = by_comm[pos]
        out = ~inside
        if out.any():  # popularity-weighted over all items
            pos = np.searchsorted(cum_all, u[out] * cum_all[-1], side="right")
            items[out] = np.minimum(pos, n_items - 1)
        return unique_sorted(boards.astype(np.int64) * n_items + items)

    def draw_many(n_slots: int, planned: bool) -> np.ndarray:
        parts = []
        for start in range(0, n_slots, CHUNK):
            stop = min(start + CHUNK, n_slots)
            if planned:  # slots start..stop of the planned boards, in board order
                boards = np.searchsorted(cum_sizes, np.arange(start, stop), side="right")
            else:  # extra slots: boards in proportion to their planned size
                boards = np.searchsorted(cum_sizes, rng.integers(0, cum_sizes[-1], stop - start), side="right")
            parts.append(draw(boards))
        return unique_sorted(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    codes = draw_many(int(cum_sizes[-1]), planned=True)
    drawn, gained = int(cum_sizes[-1]), len(codes)
    for _ in range(max_rounds):
        deficit = n_edges - len(codes)
        if deficit <= 0:
            break
        rate = max(gained / max(drawn, 1), 0.05)  # fraction of recent slots that were new edges
        drawn = int(np.ceil(deficit / rate * 1.1)) + 16
        new = np.setdiff1d(draw_many(drawn, planned=False), codes, assume_unique=True)
        gained = len(new)
        if gained > deficit:  # drop the surplus at random so that exactly n_edges remain
            new = np.sort(rng.choice(new, deficit, replace=False))
        codes = np.sort(np.concatenate([codes, new]))  # disjoint sets
        del new

    boards, items = np.divmod(codes, n_items)
    del codes
    graph = Bipartite.from_edges(name, items, boards, left_ids=np.arange(n_items), right_ids=np.arange(n_boards))
    params = {"n_items": n_items, "n_boards": n_boards, "n_edges": n_edges, "n_communities": n_communities,
              "p_in": p_in, "seed": seed, "item_exponent": item_exponent, "board_exponent": board_exponent}
    return SyntheticGraph(graph, item_community, board_community, pop, sizes, params)
