"""The bipartite graph, the synthetic graph generator and Pixie random walks (correctness against exact values)."""

from __future__ import annotations

import json
import random
import warnings

import numpy as np
import pytest

from viscover.candidates.walk import PixieParams, PixieWalker
from viscover.graph.bipartite import Bipartite, _csr
from viscover.graph.synthetic import synthetic_graph


@pytest.fixture(scope="module")
def community():
    """A small power-law graph with planted communities (1,000 items per community)."""
    return synthetic_graph(20_000, 4_000, 300_000, 20, p_in=0.8, seed=3)


def edge_set(g: Bipartite, direction: str = "left") -> set[tuple[int, int]]:
    if direction == "left":
        return {(i, int(b)) for i in range(g.n_left) for b in g.groups_of(i)}
    return {(int(i), b) for b in range(g.n_right) for i in g.members_of(b)}


def top(visits, k: int, exclude=()) -> np.ndarray:
    nodes = visits.nodes[~np.isin(visits.nodes, np.asarray(exclude, np.int64))]
    return nodes[:k]


# ---- synthetic generator --------------------------------------------------------------------------------------
def test_synthetic_counts_and_power_laws(community):
    g = community.graph
    assert (g.n_left, g.n_right) == (20_000, 4_000)
    np.testing.assert_array_equal(g.left_ids, np.arange(20_000))  # every item is a node, index == id
    np.testing.assert_array_equal(g.right_ids, np.arange(4_000))
    assert abs(g.n_edges - 300_000) <= 0.05 * 300_000
    sizes, degrees = g.right_degree(), g.left_degree()
    assert sizes.min() >= 1 and sizes.max() > 10 * np.median(sizes)  # heavy-tailed board sizes
    assert degrees.max() > 30 * max(np.median(degrees), 1)  # heavy-tailed item popularity
    # Zipf rank-size slopes, roughly the exponents asked for (duplicate removal flattens the largest boards)
    rd = np.sort(sizes)[::-1]
    mid = slice(10, len(rd) // 10)
    slope = np.polyfit(np.log(np.arange(1, len(rd) + 1)[mid]), np.log(rd[mid]), 1)[0]
    assert -0.65 < slope < -0.3, slope  # board_exponent=0.5
    ld = np.sort(degrees)[::-1]
    mid = slice(100, len(ld) // 5)
    slope = np.polyfit(np.log(np.arange(1, len(ld) + 1)[mid]), np.log(ld[mid]), 1)[0]
    assert -1.1 < slope < -0.5, slope  # item_exponent=0.9
    # balanced communities, and about p_in of the edges stay inside the board's community
    counts = np.bincount(community.item_community, minlength=20)
    assert counts.min() == counts.max() == 1000
    assert community.board_community.min() >= 0 and community.board_community.max() < 20
    li, ri = g.edges()
    inside = np.mean(community.item_community[li] == community.board_community[ri])
    assert 0.7 < inside < 0.9, inside


def test_synthetic_edge_count_and_seeds():
    a = synthetic_graph(3_000, 500, 40_000, 10, seed=5)
    b = synthetic_graph(3_000, 500, 40_000, 10, seed=5)
    c = synthetic_graph(3_000, 500, 40_000, 10, seed=6)
    assert abs(a.graph.n_edges - 40_000) <= 2_000
    for name in ("left_indptr", "left_nbrs", "right_indptr", "right_nbrs"):
        np.testing.assert_array_equal(getattr(a.graph, name), getattr(b.graph, name))
    np.testing.assert_array_equal(a.item_community, b.item_community)
    np.testing.assert_array_equal(a.board_community, b.board_community)
    assert not np.array_equal(a.graph.right_nbrs, c.graph.right_nbrs)
    assert not np.array_equal(a.item_community, c.item_community)
    # degenerate sizes still work: one community, dense request (boards saturate), p_in = 1
    d = synthetic_graph(50, 10, 400, 1, p_in=1.0, seed=0)
    assert d.graph.n_left == 50 and 0 < d.graph.n_edges <= 400
    with pytest.raises(ValueError):
        synthetic_graph(5, 5, 10, 6)


# ---- Bipartite invariants ---------------------------------------------------------------------------------------
ITEMS = np.array([30, 10, 20, 30, 40, 10, 20, 60, 30])  # external ids; (30, 7) twice; 50 isolated, via left_ids
BOARDS = np.array([7, 7, 7, 7, 8, 8, 9, 9, 9])
KEYS = {10: 2, 20: 1, 30: 2, 40: 0, 50: 1}  # 60 has no key (-1)


def small() -> Bipartite:
    return Bipartite.from_edges("toy", ITEMS, BOARDS, left_ids=np.array([50]), left_keys=KEYS)


def test_bipartite_csr_directions_and_lookup():
    g = small()
    np.testing.assert_array_equal(g.left_ids, [10, 20, 30, 40, 50, 60])
    np.testing.assert_array_equal(g.right_ids, [7, 8, 9])
    expected = {(int(g.left_index(i)[0]), int(np.searchsorted(g.right_ids, b))) for i, b in zip(ITEMS, BOARDS)}
    assert g.n_edges == len(expected) == 8  # duplicate removed
    assert edge_set(g, "left") == edge_set(g, "right") == expected
    li, ri = g.edges()
    assert set(zip(li.tolist(), ri.tolist())) == expected
    assert g.left_degree().sum() == g.right_degree().sum() == g.n_edges
    assert g.left_degree()[g.left_index(50)[0]] == 0  # isolated node kept
    np.testing.assert_array_equal(g.left_index([10, 60, 50, 35, 5, 99]), [0, 5, 4, -1, -1, -1])
    assert g.left_index(20).tolist() == [1]
    empty = Bipartite.from_edges("empty", [], [])
    assert empty.n_edges == 0 and empty.left_index([1]).tolist() == [-1]


def test_bipartite_keys_sort_board_members():
    g = small()
    np.testing.assert_array_equal(g.left_keys, [2, 1, 2, 0, 1, -1])
    for b in range(g.n_right):
        members = g.members_of(b)
        pairs = list(zip(g.left_keys[members].tolist(), members.tolist()))
        assert pairs == sorted(pairs)
    # board 7 holds 10, 20, 30 (keys 2, 1, 2): sorted by key, then index
    assert g.left_ids[g.members_of(0)].tolist() == [20, 10, 30]
    # the same, against the reference (lexsort) ordering, on random edges with repeated and missing keys
    rng = np.random.default_rng(0)
    src, dst = rng.integers(0, 50, 2000), rng.integers(0, 300, 2000)
    keys = rng.integers(-1, 4, 300).astype(np.int32)
    for order_key in (None, keys):
        indptr, nbrs = _csr(src, dst, 50, 300, order_key)
        secondary = dst if order_key is None else order_key[dst].astype(np.int64) * 300 + dst
        ref = dst[np.lexsort((secondary, src))]
        np.testing.assert_array_equal(nbrs, ref)
        np.testing.assert_array_equal(indptr, np.concatenate([[0], np.cumsum(np.bincount(src, minlength=50))]))


def test_bipartite_without_edges():
    g = small()
    i30, i10 = g.left_index([30, 10])
    drop_l, drop_r = np.array([i30, i10]), np.array([0, 0])  # (30, board 7), (10, board 7)
    h = g.without_edges(drop_l, drop_r)
    assert edge_set(h, "left") == edge_set(h, "right") == edge_set(g) - {(i30, 0), (i10, 0)}
    np.testing.assert_array_equal(h.left_ids, g.left_ids)
    np.testing.assert_array_equal(h.right_ids, g.right_ids)
    np.testing.assert_array_equal(h.left_keys, g.left_keys)
    assert g.without_edges(np.array([], np.int64), np.array([], np.int64)).n_edges == g.n_edges
    assert g.without_edges(np.array([4]), np.array([2])).n_edges == g.n_edges  # an absent edge: nothing removed


def test_bipartite_save_load(tmp_path):
    for g in (small(), Bipartite.from_edges("plain", ITEMS, BOARDS)):
        path = tmp_path / f"{g.name}.npz"
        g.save(path)
        h = Bipartite.load(path)
        assert h.name == g.name
        for name in ("left_ids", "right_ids", "left_indptr", "left_nbrs", "right_indptr", "right_nbrs"):
            np.testing.assert_array_equal(getattr(h, name), getattr(g, name))
            assert getattr(h, name).dtype == getattr(g, name).dtype
        assert (h.left_keys is None) == (g.left_keys is None)
        if g.left_keys is not None:
            np.testing.assert_array_equal(h.left_keys, g.left_keys)
        assert h.nbytes() == g.nbytes()
    bad = tmp_path / "bad.npz"
    np.savez(bad, format=np.array("something-else"))
    with pytest.raises(ValueError):
        Bipartite.load(bad)


# ---- Pixie against exact and brute-force values -----------------------------------------------------------------
def exact_visits(g: Bipartite, query: int, alpha: float) -> np.ndarray:
    """Expected share of visits per item of an endless walk with restarts.

    One step from item x: a uniform board of x, then a uniform item y of that board (P[x, y]); y is visited; the
    next step starts at the query with probability alpha, else at y. With s the share of visits,
    s = (alpha e_q + (1 - alpha) s) P, so s = alpha e_q P (I - (1 - alpha) P)^-1."""
    n = g.n_left
    P = np.zeros((n, n))
    for x in range(n):
        boards = g.groups_of(x)
        for b in boards:
            members = g.members_of(b)
            P[x, members] += 1.0 / len(boards) / len(members)
    e = np.zeros(n)
    e[query] = 1.0
    return np.linalg.solve((np.eye(n) - (1 - alpha) * P).T, alpha * (e @ P))


def monte_carlo(g: Bipartite, query: int, alpha: float, steps: int, seed: int) -> np.ndarray:
    """The same walk in plain Python (the rules, independently of the compiled code)."""
    rnd = random.Random(seed)
    boards = [list(g.groups_of(i)) for i in range(g.n_left)]
    members = [list(g.members_of(b)) for b in range(g.n_right)]
    counts = np.zeros(g.n_left)
    current = query
    for _ in range(steps):
        item = rnd.choice(members[rnd.choice(boards[current])])
        counts[item] += 1
        current = query if rnd.random() < alpha else item
    return counts / steps


def pixie_shares(g: Bipartite, query: int, alpha: float, steps: int, seed: int = 0) -> np.ndarray:
    v = PixieWalker(g).walk([query], params=PixieParams(steps=steps, alpha=alpha, n_p=0, seed=seed))
    assert v.steps == steps
    shares = np.zeros(g.n_left)
    shares[v.nodes] = v.scores  # one query: score = visit count
    return shares / steps


def test_pixie_matches_exact_distribution_two_boards():
    g = Bipartite.from_edges("two", [0, 1, 1, 2], [0, 0, 1, 1])  # boards {0, 1} and {1, 2} share item 1
    for alpha in (0.5, 0.2, 0.8):
        exact = exact_visits(g, 0, alpha)
        if alpha == 0.5:  # by hand: s0 = 5/12, s1 = 1/2, s2 = 1/12
            np.testing.assert_allclose(exact, [5 / 12, 1 / 2, 1 / 12])
        np.testing.assert_allclose(pixie_shares(g, 0, alpha, 200_000), exact, atol=0.01)


def test_pixie_matches_exact_and_monte_carlo_uneven_graph():
    # item 0 on a 2-item and a 4-item board; item 3 on three boards; item 6 only two hops away
    items = [0, 1, 0, 2, 3, 4, 3, 5, 3, 6, 4]
    boards = [0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3]
    g = Bipartite.from_edges("uneven", items, boards)
    for query in (0, 3):
        exact = exact_visits(g, query, 0.4)
        assert exact.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(monte_carlo(g, query, 0.4, 60_000, seed=query), exact, atol=0.015)
        np.testing.assert_allclose(pixie_shares(g, query, 0.4, 300_000, seed=11), exact, atol=0.01)
        # more steps, closer: the error shrinks like 1/sqrt(N)
        np.testing.assert_allclose(pixie_shares(g, query, 0.4, 3_000_000, seed=12), exact, atol=0.003)


def test_pixie_deterministic_per_seed(community):
    w = PixieWalker(community.graph)
    q = int(np.argmax(community.graph.left_degree()))
    params = PixieParams(steps=20_000, n_p=0, seed=42)
    a, b = w.walk([q], params=params), w.walk([q], params=params)
    np.testing.assert_array_equal(a.nodes, b.nodes)
    np.testing.assert_array_equal(a.scores, b.scores)
    c = w.walk([q], params=PixieParams(steps=20_000, n_p=0, seed=43))
    assert not (len(a.nodes) == len(c.nodes) and np.array_equal(a.nodes, c.nodes)
                and np.array_equal(a.scores, c.scores))
    assert a.scores.sum() == c.scores.sum() == 20_000  # every step is one visit
    assert np.all(np.diff(a.scores) <= 0)  # best first
    # the walker's buffers are left clean: a fresh walker gives the same answer
    d = PixieWalker(community.graph).walk([q], params=params)
    np.testing.assert_array_equal(a.nodes, d.nodes)


def test_pixie_top_is_the_full_answers_prefix(community):
    """`top` keeps only the best few (the service asks for its candidate pool): the same items, scores and order,
    ties by node, as the first `top` of the whole answer, for one query and for several."""
    w = PixieWalker(community.graph)
    rng = np.random.default_rng(3)
    nodes = np.flatnonzero(community.graph.left_degree() >= 2)
    for queries in ([int(nodes[0])], list(rng.choice(nodes, 3, replace=False))):
        params = PixieParams(steps=5_000, n_p=0, seed=9)  # few steps: many items tie on low counts
        full = w.walk(queries, params=params)
        assert len(np.unique(full.scores)) < len(full.scores)  # there are ties to break
        tied = np.diff(full.scores) == 0
        assert np.all(full.nodes[:-1][tied] < full.nodes[1:][tied])  # equal scores: ascending nodes
        for top_n in (1, 7, 50, len(full.nodes), len(full.nodes) + 5):
            cut = w.walk(queries, params=params, top=top_n)
            np.testing.assert_array_equal(cut.nodes, full.nodes[:top_n])
            np.testing.assert_array_equal(cut.scores, full.scores[:top_n])
            assert cut.steps == full.steps


def test_pixie_early_stopping(community):
    w = PixieWalker(community.graph)
    rng = np.random.default_rng(1)
    queries = rng.choice(np.flatnonzero(community.graph.left_degree() >= 3), 15, replace=False)
    used, overlap = [], []
    for q in queries:
        full = w.walk([q], params=PixieParams(steps=100_000, n_p=0))
        early = w.walk([q], params=PixieParams(steps=100_000, n_p=2000, n_v=4))
        assert full.steps == 100_000
        assert early.steps < 100_000
        assert np.sum(early.scores >= 4) == 2000  # stopped exactly when the 2000th item reached 4 visits
        used.append(early.steps)
        overlap.append(len(np.intersect1d(top(full, 20, [q]), top(early, 20, [q]))) / 20)
    print(f"early stopping n_p=2000 n_v=4: mean steps {np.mean(used):.0f} of 100000, "
          f"top-20 overlap mean {np.mean(overlap):.2f} min {np.min(overlap):.2f}")
    assert np.mean(used) < 80_000
    assert np.mean(overlap) >= 0.8


def test_pixie_budget_split():
    # item degrees: 0 -> 1 board, 1 -> 3 boards, 2 -> 10 boards, 3 -> 0 boards
    items = [0] + [1] * 3 + [2] * 10 + [4] * 10
    boards = [0] + [0, 1, 2] + list(range(10)) + list(range(10))
    g = Bipartite.from_edges("deg", items, boards, left_ids=np.arange(5))
    w = PixieWalker(g)
    c = 1.0 + np.log(10)  # 1 + log of the largest item degree
    queries, weights = np.array([0, 1, 2, 3]), np.array([1.0, 2.0, 0.5, 1.0])
    degree = np.array([1.0, 3.0, 10.0, 0.0])
    s = np.where(degree > 0, degree * (c - np.log(np.maximum(degree, 1))), 0.0)
    share = weights * s / np.sum(weights * s)
    budget = w.budget(queries, weights, 100_000)
    np.testing.assert_array_equal(budget, np.floor(100_000 * share).astype(np.int64))
    assert budget[3] == 0 and budget.sum() <= 100_000
    assert budget[2] / budget[1] == pytest.approx(0.5 * 10 * (c - np.log(10)) / (2 * 3 * (c - np.log(3))), rel=1e-4)
    v = w.walk(queries, weights, PixieParams(steps=100_000, n_p=0))
    assert v.steps == budget.sum()
    assert w.walk([3], params=PixieParams(steps=1000)).nodes.size == 0  # an isolated query reaches nothing


def test_pixie_multi_hit_booster():
    # a -> board 0 {a, x, s}; b -> board 1 {b, y, s}. With alpha = 1 every walk restarts after one step, so x is
    # reached only from a, y only from b, and s from both
    a, b, x, y, s = range(5)
    g = Bipartite.from_edges("booster", [a, x, s, b, y, s], [0, 0, 0, 1, 1, 1])
    w = PixieWalker(g)
    for weights, alpha in (([1.0, 1.0], 1.0), ([3.0, 1.0], 1.0), ([1.0, 2.0], 0.5)):
        budget = w.budget(np.array([a, b]), np.array(weights), 60_000)
        np.testing.assert_array_equal(budget, np.floor(60_000 * np.array(weights) / sum(weights)))
        both = w.walk([a, b], weights, PixieParams(steps=60_000, alpha=alpha, n_p=0, seed=5))
        # query i walks with seed + 7919 i: the same walks run alone give each query's own counts V_q
        va = w.walk([a], params=PixieParams(steps=int(budget[0]), alpha=alpha, n_p=0, seed=5))
        vb = w.walk([b], params=PixieParams(steps=int(budget[1]), alpha=alpha, n_p=0, seed=5 + 7919))
        count_a = dict(zip(va.nodes.tolist(), va.scores.tolist()))
        count_b = dict(zip(vb.nodes.tolist(), vb.scores.tolist()))
        got = dict(zip(both.nodes.tolist(), both.scores.tolist()))
        assert both.steps == va.steps + vb.steps == budget.sum()
        for p in range(5):  # V[p] = (sum_q sqrt(V_q[p]))^2 for every item
            boosted = (np.sqrt(count_a.get(p, 0)) + np.sqrt(count_b.get(p, 0))) ** 2
            assert got.get(p, 0) == pytest.approx(boosted, rel=1e-12)
        if alpha == 1.0:
            assert set(count_a) == {a, x, s} and set(count_b) == {b, y, s}
            assert got[x] == count_a[x] and got[y] == count_b[y]  # reached from one query: its own count
            assert got[s] > count_a[s] + count_b[s]  # the booster favours items several queries reach ...
            assert both.nodes[0] == s  # ... over items with as many visits from one query
            if weights[0] == weights[1]:  # (sqrt(N/6) + sqrt(N/6))^2 = 4 N/6 against N/6
                assert got[s] > 3.5 * max(got[a], got[x], got[b], got[y])


def test_pixie_biased_walks():
    rng = np.random.default_rng(7)
    n_items, n_boards = 3000, 600
    items = rng.integers(0, n_items, 15_000)
    boards = np.concatenate([np.arange(n_boards), rng.integers(0, n_boards, 15_000 - n_boards)])
    keys = rng.integers(0, 3, n_items)
    # the query (key 0) is also on one extra board without key-1 items: the only way to reach other keys
    q = int(np.flatnonzero((np.bincount(items, minlength=n_items) >= 4) & (keys == 0))[0])
    extra = np.concatenate([[q], rng.choice(np.flatnonzero(keys == 2), 3, replace=False)])
    items = np.concatenate([items, extra])
    boards = np.concatenate([boards, np.full(4, n_boards)])
    g = Bipartite.from_edges("keys", items, boards, left_ids=np.arange(n_items),
                             left_keys={i: int(k) for i, k in enumerate(keys)})
    key = g.left_keys
    has_key1 = np.array([np.any(key[g.members_of(b)] == 1) for b in range(g.n_right)])
    assert not has_key1[n_boards] and has_key1[:n_boards].all()
    w = PixieWalker(g)
    biased = w.walk([q], params=PixieParams(steps=50_000, n_p=0, bias=1.0), want_key=1)
    plain = w.walk([q], params=PixieParams(steps=50_000, n_p=0, bias=0.0), want_key=1)
    unwanted = w.walk([q], params=PixieParams(steps=50_000, n_p=0, bias=1.0))  # want_key=-1: no bias
    np.testing.assert_array_equal(plain.nodes, unwanted.nodes)
    others = biased.nodes[key[biased.nodes] != 1]
    assert set(others.tolist()) == set(extra.tolist())  # other keys only through the board without key-1 items
    for v in others:
        assert not has_key1[g.groups_of(v)].all(), v

    def share(v) -> float:  # share of the visits that went to key-1 items
        return v.scores[key[v.nodes] == 1].sum() / v.scores.sum()

    assert share(biased) > 0.8 and 0.2 < share(plain) < 0.5  # (visits to the extra board: about 1 in 10)
    half = w.walk([q], params=PixieParams(steps=50_000, n_p=0, bias=0.5), want_key=1)
    assert share(plain) < share(half) < share(biased)


def test_pixie_finds_the_query_community(community):
    w = PixieWalker(community.graph)
    rng = np.random.default_rng(2)
    queries = rng.choice(np.flatnonzero(community.graph.left_degree() >= 2), 30, replace=False)
    inside = []
    for q in queries:
        best = top(w.walk([q], params=PixieParams(steps=100_000)), 20, [q])
        inside.append(np.mean(community.item_community[best] == community.item_community[q]))
    print(f"top-20 in the query's community: mean {np.mean(inside):.2f} min {np.min(inside):.2f}")
    assert np.mean(inside) > 0.7


def test_pixie_walk_edge_cases():
    """Domain key 0 is a key like any other; a query that cannot walk (no board, or no weight) does not stop the
    others; zero total weight walks nothing; results list equal scores by node."""
    # board 0 = {0 (key 1), 1..40 (key 0 for odd nodes, key 1 for even)}; node 41 on no board
    members = np.arange(41)
    g = Bipartite.from_edges("k", members, np.zeros(41, np.int64), left_ids=np.arange(42),
                             left_keys={int(i): int(i % 2 == 0) for i in range(42)})
    w = PixieWalker(g)
    biased = w.walk([0], params=PixieParams(steps=4000, n_p=0, bias=1.0, seed=1), want_key=0)
    assert set(biased.nodes.tolist()) <= set(range(1, 41, 2))  # only key-0 (odd) items: key 0 is honoured
    after_cold = w.walk([41, 0], params=PixieParams(steps=4000, n_p=0, seed=1))
    assert after_cold.steps == 4000 and len(after_cold.nodes) > 20  # the cold query first: 0 still walks
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 on the way
        nothing = w.walk([0, 5], weights=[0.0, 0.0], params=PixieParams(steps=4000))
    assert nothing.nodes.dtype == np.int64 and len(nothing.nodes) == len(nothing.scores) == 0
    assert nothing.steps == 0 and w.walk([41], params=PixieParams(steps=100)).steps == 0
    few = w.walk([0], params=PixieParams(steps=120, n_p=0, seed=2))  # 120 visits over 41 items: many ties
    for score in set(few.scores.tolist()):
        tied = few.nodes[few.scores == score]
        assert np.array_equal(tied, np.sort(tied))
    assert len(few.scores) > len(set(few.scores.tolist())) + 10  # there were ties to order
    empty = PixieWalker(Bipartite.from_edges("k", np.zeros(0, np.int64), np.zeros(0, np.int64)))  # a new install
    assert empty.walk([], params=PixieParams(steps=100)).steps == 0
    single = w.walk([0], params=PixieParams(steps=1, n_p=0))  # the smallest budget still walks its one step
    assert single.steps == 1 and len(single.nodes) == 1


# ---- the graph cache ------------------------------------------------------------------------------------------------
class FakeStore:
    """The three store calls the graph cache makes, counting how often the graph is read from the catalogue."""

    def __init__(self):
        self.items, self.boards, self.signature, self.reads = [1, 2, 3, 4], [7, 7, 8, 8], [4, 10], 0

    def graph_signature(self):
        return list(self.signature)

    def board_memberships(self):
        self.reads += 1
        return np.array(self.items, np.int64), np.array(self.boards, np.int64)

    def item_attributes(self):
        ids = sorted(set(self.items) | {5})
        return np.array(ids, np.int64), ["a" if i % 2 else None for i in ids], {}


def test_graph_cache_builds_once_saves_and_follows_the_catalogue(tmp_path):
    """Built once per catalogue signature, kept in memory, saved with its signature so that another process loads
    it instead of reading the catalogue; a changed signature or a damaged file means a rebuild."""
    from viscover.graph.cache import GRAPH_FILE, META_FILE, GraphCache

    store, folder = FakeStore(), tmp_path / "graph"
    cache = GraphCache(store, folder)
    graph = cache.get()
    assert graph.n_left == 5 and graph.n_right == 2 and graph.n_edges == 4 and store.reads == 1
    assert cache.get() is graph and store.reads == 1  # kept in memory
    assert json.loads((folder / META_FILE).read_text()) == {"signature": [4, 10], "items": 5, "boards": 2,
                                                            "edges": 4}
    other = GraphCache(store, folder).get()  # another process: loaded from disk, not rebuilt
    assert store.reads == 1 and np.array_equal(other.right_nbrs, graph.right_nbrs)
    assert np.array_equal(other.left_keys, graph.left_keys)
    store.items, store.boards, store.signature = [1, 2, 3, 4, 5], [7, 7, 8, 8, 8], [5, 15]
    rebuilt = cache.get()
    assert store.reads == 2 and rebuilt.n_edges == 5  # the catalogue changed
    (folder / GRAPH_FILE).write_bytes(b"not a graph")
    assert GraphCache(store, folder).get().n_edges == 5 and store.reads == 3  # damaged: rebuilt
    (folder / META_FILE).write_text("{not json")
    assert GraphCache(store, folder).get().n_edges == 5 and store.reads == 4


def test_processes_building_the_graph_take_turns_and_the_second_loads_the_first_ones(tmp_path):
    """The graph and its signature are two files: two processes saving at once (the workers of one server after a
    write) could leave one's graph with the other's signature. One builds while the other waits (a file lock; two
    caches in one process stand for two processes), and the one that waited loads what the first saved."""
    import threading

    from viscover.graph.cache import GraphCache

    store, folder = FakeStore(), tmp_path / "graph"
    first, second = GraphCache(store, folder), GraphCache(store, folder)
    got = []
    with first._files_lock.held():  # the first is building
        waiting = threading.Thread(target=lambda: got.append(second.get()))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and not got, "the second waits for the first"
        first._kept = None
        built = first.get()  # re-entrant for its holder
    waiting.join(10)
    assert got and np.array_equal(got[0].right_nbrs, built.right_nbrs) and store.reads == 1  # loaded, not rebuilt
