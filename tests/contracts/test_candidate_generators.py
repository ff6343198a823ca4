"""The contract of a candidate generator, checked for every generator in the registry (a new one is checked by
registering it), on three catalogues: the hand-made one of test_related_service.py (with and without its vector
index), real photos (the shared indexed home: grocery items on no board, clothing boards) and a synthetic power-law
graph with community-shaped vectors. Where a brute-force answer exists it is computed here independently: plain
loops over boards for co-occurrence, exact cosine over every stored vector for visual neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from test_related_service import catalogue  # noqa: F401  (the hand-made catalogue fixture)
from viscover import Settings
from viscover.candidates import (REGISTRY, CandidateParams, CandidateSources, PixieParams, VisualNeighbours,
                                 build_generators, build_query)
from viscover.candidates.cooccurrence import MAX_BOARD
from viscover.graph.synthetic import synthetic_graph
from viscover.index import build_index

GENERATORS = list(REGISTRY)
WORLDS = ["handmade", "handmade-no-index", "photos", "synthetic"]


def params(seed: int = 3, pool: int = 200) -> CandidateParams:
    return CandidateParams(pixie=PixieParams(steps=20_000, bias=0.9, seed=seed), pool=pool)


def queries(graph) -> list[tuple[np.ndarray, np.ndarray | None, int]]:
    """(query nodes, weights, wanted domain): warm items, cold items (on no board), weighted sets, a domain bias."""
    degree = graph.left_degree()
    warm = np.nonzero(degree > 0)[0]
    cold = np.nonzero(degree == 0)[0]
    busiest = int(warm[np.argmax(degree[warm])])
    middle = warm[len(warm) // 2:][:3]
    out = [(np.array([busiest]), None, -1), (warm[:1], None, -1), (warm[-1:], None, 0),  # warm first (see below)
           (np.array([warm[0], warm[-1]]), np.array([1.0, 0.2]), -1),
           (middle, np.array([0.5, 2.0, 1.0])[: len(middle)], -1)]
    out += [(cold[i: i + 1], None, -1) for i in (0, len(cold) // 2, len(cold) - 1) if len(cold)]
    if len(cold):
        out.append((np.array([cold[0], busiest]), np.array([1.0, 1.0]), -1))  # a cold item beside a warm one
    return out


@pytest.fixture(scope="module")
def synthetic():
    syn = synthetic_graph(3_000, 400, 20_000, 12, p_in=0.8, seed=11)
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(12, 24)).astype(np.float32)
    vectors = centres[syn.item_community] + 1.2 * rng.normal(size=(len(syn.item_community), 24)).astype(np.float32)
    ids = syn.graph.left_ids
    index = build_index(ids, ids, vectors[ids], Settings(), centered=True, model="synthetic")
    return CandidateSources(syn.graph, VisualNeighbours(syn.graph, index))


@pytest.fixture(scope="module")
def photos(request):
    """The related-items sources of the shared indexed home (real photos; skipped, or failed in a strict run,
    without the shared data)."""
    from viscover import Engine

    with Engine(request.getfixturevalue("indexed_home"), Settings(workers=1)) as engine:
        service = engine.related_service()
        yield CandidateSources(service.graph, service.visual)


@pytest.fixture(params=WORLDS)
def world(request, catalogue) -> CandidateSources:  # noqa: F811
    if request.param == "photos":
        return request.getfixturevalue("photos")
    if request.param == "synthetic":
        return request.getfixturevalue("synthetic")
    graph, index, _, _ = catalogue
    visual = VisualNeighbours(graph, index) if request.param == "handmade" else None
    return CandidateSources(graph, visual)


def generator(name: str, sources: CandidateSources):
    return next(g for g in build_generators(sources) if g.name == name)


def propose(name: str, sources: CandidateSources, nodes, weights=None, want: int = -1, p=None):
    p = p or params()
    query = build_query(sources.graph, sources.visual, nodes, weights, p, want)
    return query, generator(name, sources).propose(query, p)


# ---- the contract, for every registered generator -------------------------------------------------------------
def test_the_registry_keeps_todays_sources_first():
    """Explanations list sources in registry order; the JSON of today's results must not change."""
    assert GENERATORS[:3] == ["pixie", "co-occurrence", "visual"]


@pytest.mark.parametrize("name", GENERATORS)
def test_nodes_are_valid_unique_and_never_the_query(name, world):
    for nodes, weights, want in queries(world.graph):
        query, (found, scores) = propose(name, world, nodes, weights, want)
        assert found.dtype == np.int64 and len(found) == len(scores)
        assert np.all((found >= 0) & (found < world.graph.n_left)), name
        assert len(np.unique(found)) == len(found), name
        assert not np.isin(found, query.nodes).any(), name
        assert len(found) <= params().pool + len(query.nodes)


@pytest.mark.parametrize("name", GENERATORS)
def test_scores_are_finite_and_best_first(name, world):
    proposed_any = False
    for nodes, weights, want in queries(world.graph):
        _, (found, scores) = propose(name, world, nodes, weights, want)
        scores = np.asarray(scores, np.float64)
        assert np.all(np.isfinite(scores)) and np.all(np.diff(scores) <= 0), name
        proposed_any |= len(found) > 0
    assert proposed_any or (name == "visual" and world.visual is None)  # the checks above were not vacuous


@pytest.mark.parametrize("name", GENERATORS)
def test_deterministic_given_the_seed(name, world):
    """A fresh generator and a reused one (walk buffers) give the same answer for the same seed."""
    reused = generator(name, world)
    for nodes, weights, want in queries(world.graph):
        p = params(seed=5)
        query = build_query(world.graph, world.visual, nodes, weights, p, want)
        first = reused.propose(query, p)
        again = reused.propose(query, p)
        fresh = generator(name, world).propose(query, p)
        for other in (again, fresh):
            assert np.array_equal(first[0], other[0]) and np.array_equal(first[1], other[1]), name


@pytest.mark.parametrize("name", GENERATORS)
def test_safe_from_many_threads(name, world):
    """One generator shared by concurrent requests (the server's threads, no lock) answers each query as it
    answers it alone: per-thread buffers, nothing one walk leaves behind for another."""
    from concurrent.futures import ThreadPoolExecutor

    shared = generator(name, world)
    p = params(seed=5)
    prepared = [build_query(world.graph, world.visual, n, w, p, want) for n, w, want in queries(world.graph)]
    alone = [generator(name, world).propose(q, p) for q in prepared]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: (i % len(prepared), shared.propose(prepared[i % len(prepared)], p)),
                                range(8 * len(prepared))))
    for i, (nodes, scores) in answers:
        assert np.array_equal(nodes, alone[i][0]) and np.array_equal(scores, alone[i][1]), name


@pytest.mark.parametrize("name", GENERATORS)
def test_an_empty_query_proposes_nothing(name, world):
    query, (found, scores) = propose(name, world, np.zeros(0, np.int64))
    assert len(query.nodes) == 0 and len(found) == len(scores) == 0


@pytest.mark.parametrize("name", GENERATORS)
def test_a_smaller_pool_keeps_the_best(name, world):
    """The pool bounds what a generator keeps, from the top of its own ranking. (Warm queries only: a cold query
    walks from its nearest neighbours among the first pool + 1, so its seeds depend on the pool.)"""
    for nodes, weights, want in queries(world.graph)[:4]:
        _, (big, _) = propose(name, world, nodes, weights, want, params(pool=50))
        _, (small, _) = propose(name, world, nodes, weights, want, params(pool=5))
        assert len(small) <= 5 + len(nodes)
        assert np.array_equal(small, big[: len(small)]), name


# ---- brute force, where a generator's answer can be computed directly ----------------------------------------------
def cooccurrence_by_hand(graph, query, pool: int) -> dict[int, float]:
    """Weighted count of boards shared with each seed, by plain loops; top `pool` by (-count, node), query dropped."""
    counts: dict[int, float] = {}
    for seed, weight in zip(query.seeds.tolist(), query.seed_weights.tolist()):
        for board in range(graph.n_right):
            members = graph.right_nbrs[graph.right_indptr[board]:graph.right_indptr[board + 1]].tolist()
            if seed in members:
                assert len(members) <= MAX_BOARD  # no sampling in these catalogues: the count is exact
                for m in members:
                    counts[m] = counts.get(m, 0.0) + weight
    ranked = sorted(counts, key=lambda n: (-counts[n], n))[:pool]
    return {n: counts[n] for n in ranked if n not in set(query.nodes.tolist())}


def test_cooccurrence_equals_a_loop_over_boards(world):
    for nodes, weights, want in queries(world.graph):
        query, (found, scores) = propose("co-occurrence", world, nodes, weights, want, params(pool=40))
        expected = cooccurrence_by_hand(world.graph, query, 40)
        assert set(found.tolist()) == set(expected)
        assert np.allclose(scores, [expected[n] for n in found.tolist()], rtol=1e-12)


def test_visual_neighbours_equal_exact_cosine(world):
    """The query vector is the unit weighted mean of the query items' stored vectors; neighbours are the indexed
    graph nodes with the highest cosine to it (pool + len(query) of them), the query's own nodes removed."""
    if world.visual is None:
        for nodes, weights, want in queries(world.graph):
            assert len(propose("visual", world, nodes, weights, want)[1][0]) == 0  # no index: no looks
        return
    graph, index = world.graph, world.visual.index
    indexed = np.nonzero(index.contains(graph.left_ids))[0]
    unit = index.stored_floats(graph.left_ids[indexed]).astype(np.float64)
    row = {int(n): i for i, n in enumerate(indexed)}
    pool = 30
    for nodes, weights, want in queries(graph):
        _, (found, scores) = propose("visual", world, nodes, weights, want, params(pool=pool))
        w = np.ones(len(nodes)) if weights is None else weights
        mine = [(row[int(n)], weight) for n, weight in zip(nodes, w) if int(n) in row]
        if not mine:
            assert len(found) == 0
            continue
        mean = sum(weight * unit[i] for i, weight in mine)
        cosine = unit @ (mean / np.linalg.norm(mean))
        order = np.lexsort((indexed, -cosine))[: pool + len(nodes)]
        top = [int(indexed[i]) for i in order if indexed[i] not in nodes]
        exact = dict(zip(indexed.tolist(), cosine.tolist()))
        assert np.allclose(scores, [exact[n] for n in found.tolist()], atol=1e-5)
        if set(found.tolist()) != set(top):  # only near-ties at the cut may differ
            cut = cosine[order[-1]]
            differ = set(found.tolist()) ^ set(top)
            assert all(abs(exact[n] - cut) < 1e-5 for n in differ)
