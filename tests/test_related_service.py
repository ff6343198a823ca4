"""The related-items service on a small hand-made catalogue whose answers are known: which candidates each
generator proposes, what is left out (the query, its copies, its near-duplicates), cold items, weights, domain
bias, explanations, and the feature rows used to train rankers. (test_related.py runs it end to end on photos.)"""

from __future__ import annotations

import numpy as np
import pytest

from viscover import Settings
from viscover.candidates import FEATURES, PixieParams, VisualNeighbours
from viscover.graph import Bipartite
from viscover.graph.attributes import ItemAttributes
from viscover.index import build_index
from viscover.related import RelatedHit, RelatedItems, RelatedParams

# nodes 0..13 are items 100..113. Boards: 0 = {0, 1, 2, 3, 10, 11}, 1 = {3, 4, 5, 6}, 2 = {7, 8, 9}.
# 10 shows the same image as 0; 11 looks like 0 (a near-duplicate); 12 and 13 are on no board (cold):
# 12 looks like board 2's items, 13 somewhat like 0. Items 4, 5, 6 are of domain 1, the rest of domain 0.
BOARDS = {0: [0, 1, 2, 3, 10, 11], 1: [3, 4, 5, 6], 2: [7, 8, 9]}
DIM = 16


@pytest.fixture(scope="module")
def catalogue():
    rng = np.random.default_rng(5)
    centres = 2.0 * rng.normal(size=(3, DIM))
    cluster = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 0, 2, 0]
    vectors = centres[cluster] + rng.normal(size=(14, DIM))  # board-mates: cosine 0.6-0.9
    vectors[10] = vectors[0]  # the same picture
    vectors[11] = vectors[0] + 0.01 * rng.normal(size=DIM)  # re-encoded: nearly the same
    vectors[13] = vectors[0] + 2.5 * rng.normal(size=DIM)  # a loose likeness (cosine 0.77)
    left = [n for b, members in BOARDS.items() for n in members]
    right = [b for b, members in BOARDS.items() for _ in members]
    ids = np.arange(100, 114)
    domains = {100 + n: (1 if n in (4, 5, 6) else 0) for n in range(14)}
    graph = Bipartite.from_edges("item-board", 100 + np.array(left), np.array(right), left_ids=ids,
                                 left_keys=domains)
    index = build_index(ids, ids, vectors.astype(np.float32), Settings(), centered=True)
    image_of = np.arange(14)
    image_of[10] = 0
    attrs = ItemAttributes(labels=np.zeros((0, 14), np.int32), domains=np.array([domains[i] for i in ids], np.int32))
    return graph, index, image_of, attrs


def service(catalogue, visual: bool = True, images: bool = True, **params) -> RelatedItems:
    graph, index, image_of, attrs = catalogue
    return RelatedItems(graph, VisualNeighbours(graph, index) if visual else None, attrs,
                        image_of if images else None,
                        params=RelatedParams(pixie=PixieParams(steps=20_000, bias=0.9, seed=3), **params))


def explain(result, node: int) -> dict:
    return result.explain(int(np.nonzero(result.nodes == node)[0][0]))


def candidate_set(nodes, pixie, cooc, visual):
    """A candidate set with the given signal per node, every generator credited with every node."""
    from viscover.candidates import CandidateSet

    scores = {"pixie": pixie, "co-occurrence": cooc, "visual": visual}
    return CandidateSet(nodes, scores, {name: np.ones(len(nodes), bool) for name in scores})


def test_without_an_index_the_graph_alone_answers(catalogue):
    """No vectors yet: walks and shared boards only; the query and items showing its image are left out (a
    near-duplicate cannot be recognised without vectors)."""
    result = service(catalogue, visual=False).related([0], k=20)
    assert set(result.nodes.tolist()) == {1, 2, 3, 11, 4, 5, 6}
    assert all("visual" not in explain(result, n)["sources"] for n in result.nodes)
    assert not result.cold and np.all(np.diff(result.scores) <= 0)
    bare = service(catalogue, visual=False, images=False).related([0], k=20)  # as eval-related builds it
    assert set(bare.nodes.tolist()) == {1, 2, 3, 10, 11, 4, 5, 6}  # the query itself is still left out


def test_the_query_its_copies_and_near_duplicates_are_left_out(catalogue):
    svc = service(catalogue)
    result = svc.related([0], k=20)
    nodes = result.nodes.tolist()
    assert not {0, 10, 11} & set(nodes) and {1, 2, 3, 4, 5, 6, 13} <= set(nodes)
    assert explain(result, 1)["sources"] == ["pixie", "co-occurrence", "visual"]  # a board-mate: every generator
    assert explain(result, 13)["sources"] == ["visual"]  # on no board: proposed by its looks alone
    assert explain(result, 4)["sources"] == ["pixie", "visual"]  # two boards away: walks reach it, no shared board
    features = explain(result, 1)["features"]
    assert list(features) == list(FEATURES) and features["visual"] == round(features["visual"], 4)
    for score_by in ("pixie", "cooccurrence", "visual"):  # the single-signal rankings obey the same rules
        assert not {0, 10, 11} & set(svc.related([0], k=20, score_by=score_by).nodes.tolist())


def test_a_looser_duplicate_threshold_keeps_near_copies(catalogue):
    assert 11 in service(catalogue, dedup_threshold=0.0).related([0], k=20).nodes
    assert 11 not in service(catalogue, dedup_threshold=0.05).related([0], k=20).nodes


def test_cold_items_walk_from_their_visual_neighbours(catalogue):
    """An item on no board walks from its nearest items that are on boards, weighted by likeness, and its looks
    rank first; an item on one board is not cold."""
    svc = service(catalogue)
    cold = svc.related([12], k=5)
    assert cold.cold and 12 not in cold.seeds and {7, 8, 9} <= set(cold.seeds.tolist())
    assert all(svc.graph.left_degree()[cold.seeds] > 0)  # 13 looks like nothing near 12 and has no board anyway
    assert set(cold.nodes[:3].tolist()) == {7, 8, 9}
    assert "pixie" in explain(cold, 7)["sources"]  # reached by walks from the seeds, not only by looks
    assert not svc.related([4], k=5).cold  # one membership is enough to walk from the item itself


def test_weights_shape_the_visual_query(catalogue):
    """A weighted set's visual query is the weighted mean of its items' vectors: a negligible weight leaves the
    visual similarities those of the other item alone."""
    svc = service(catalogue)
    alone = svc.related([0], k=20, score_by="visual")
    mixed = svc.related([0, 7], weights=[1.0, 1e-6], k=20, score_by="visual")
    for node in (1, 2, 3, 13):
        assert explain(mixed, node)["features"]["visual"] == pytest.approx(explain(alone, node)["features"]["visual"],
                                                                           abs=1e-3)


def test_domain_bias_reaches_the_walks(catalogue):
    svc = service(catalogue, visual=False)
    domain1 = np.isin(np.arange(14), [4, 5, 6])

    def share(want: int) -> float:
        walks = svc.related([3], k=20, want_domain=want, score_by="pixie")
        return float(walks.scores[domain1[walks.nodes]].sum() / walks.scores.sum())

    assert share(1) > share(-1) + 0.1


def test_ranker_features_match_what_related_computes(catalogue):
    """features_for (training rows for logged impressions) gives the rows `related` scored for the candidates it
    proposed, and zero walk and shared-board signals for items no generator proposed."""
    svc = service(catalogue)
    result = svc.related([3], weights=[2.0], k=20)
    rows = svc.features_for([3], result.nodes, weights=[2.0])
    assert np.allclose(rows, result.features, atol=1e-6)
    graph_only = service(catalogue, visual=False)
    unseen = graph_only.features_for([0], [7, 12])  # another board's item and an item on no board
    assert np.all(unseen.matrix[:, :4] == 0) and np.all(unseen.matrix[:, 4] == 0)
    seen = graph_only.related([0], k=20)
    assert np.allclose(graph_only.features_for([0], seen.nodes), seen.features, atol=1e-6)


def test_features_for_a_weighted_set_and_for_a_query_without_candidates(catalogue):
    """A weighted set of query items: features_for scores looks against the same weighted query vector as
    `related` (it once used the plain mean); a query with nothing related gets zero rows, not an error."""
    svc = service(catalogue)
    result = svc.related([0, 7], weights=[1.0, 0.2], k=20)
    rows = svc.features_for([0, 7], result.nodes, weights=[1.0, 0.2])
    assert np.allclose(rows, result.features, atol=1e-6)
    lonely = service(catalogue, visual=False)
    assert len(lonely.related([12], k=5).nodes) == 0  # on no board, and no index to look with
    rows = lonely.features_for([12], [0, 7])
    assert rows.shape == (2, len(FEATURES)) and not rows.matrix[:, :5].any()


def test_related_defaults_signals_explanations_and_vectors(catalogue):
    """Ten results unless asked otherwise; a single-signal ranking lists only what that generator proposed; the
    heuristic a cold query gets is the cold one; explanations round features to 4 places; unit_vectors (for
    pruning boards) are each item's stored vector, zeros for items not indexed."""
    from viscover.rank import heuristic_score

    graph, index, _, _ = catalogue
    svc = service(catalogue)
    assert len(svc.related([3]).nodes) == 10
    light = svc.related([3], weights=[0.25], k=20)  # a lone item's weight does not change its looks
    assert np.allclose(light.features.column("visual"), svc.related([3], k=20).features.column("visual"))
    for name, source in (("pixie", "pixie"), ("cooccurrence", "co-occurrence"), ("visual", "visual")):
        only = svc.related([3], k=20, score_by=name)
        assert len(only.nodes) and all(only.sources[source]), name
    assert len(svc.related([3], k=20, score_by="cooccurrence").nodes) == 8 < len(svc.related([3], k=20).nodes)
    cold = svc.related([12], k=8)
    assert cold.cold and np.allclose(cold.scores, heuristic_score(cold.features, True))
    assert not np.allclose(cold.scores, heuristic_score(cold.features, False))
    for i in range(len(cold.nodes)):
        assert cold.explain(i)["features"] == {n: round(float(v), 4) for n, v in zip(FEATURES, cold.features.matrix[i])}
    assert any(v != round(v, 3) for v in cold.explain(0)["features"].values())  # 4 places really kept
    partial = VisualNeighbours(graph, build_index(np.arange(100, 107), np.arange(100, 107),
                                                  index.stored_floats(np.arange(100, 107)), Settings(), centered=True))
    unit, present = partial.unit_vectors()
    assert unit.shape == (14, DIM) and present.tolist() == [True] * 7 + [False] * 7
    assert np.allclose(unit[:7], index.stored_floats(np.arange(100, 107)), atol=1e-6) and not unit[7:].any()


def test_hits_as_json():
    class Item:
        def to_dict(self):
            return {"id": "x"}

    hit = RelatedHit(Item(), 0.123456789, {"sources": ["visual"]})
    assert hit.to_dict() == {"score": 0.123457, "id": "x"}
    assert hit.to_dict(explain=True)["explanation"] == {"sources": ["visual"]}


def test_cooccurrence_counts_shared_boards_by_seed_weight():
    """Items sharing boards with the seeds, scored by the summed weight of the seeds whose boards they share, best
    first (ties by node); a board larger than max_board contributes a seeded sample of exactly that many."""
    from viscover.candidates.cooccurrence import cooccurrence

    g = Bipartite.from_edges("b", np.array([0, 1, 2, 2, 3, 3, 4]), np.array([0, 0, 0, 1, 1, 2, 2]))
    nodes, counts = cooccurrence(g, np.array([0, 3]), np.array([1.0, 0.5]))
    # seed 0 (weight 1) is on board 0 = {0, 1, 2}; seed 3 (weight 0.5) on boards 1 = {2, 3} and 2 = {3, 4}
    assert nodes.tolist() == [2, 0, 1, 3, 4] and counts.tolist() == [1.5, 1.0, 1.0, 1.0, 0.5]
    assert nodes.dtype == np.int64
    lone = Bipartite.from_edges("b", np.array([0]), np.array([0]), left_ids=np.array([0, 1]))
    nodes, counts = cooccurrence(lone, np.array([1]), np.array([1.0]))  # a seed on no board
    assert nodes.dtype == np.int64 and len(nodes) == len(counts) == 0
    big = Bipartite.from_edges("b", np.arange(50), np.zeros(50, np.int64))
    sample, _ = cooccurrence(big, np.array([0]), np.array([1.0]), max_board=10, seed=4)
    assert len(sample) == 10 and len(set(sample.tolist())) == 10
    assert np.array_equal(sample, cooccurrence(big, np.array([0]), np.array([1.0]), max_board=10, seed=4)[0])
    assert len(cooccurrence(big, np.array([0]), np.array([1.0]), max_board=50)[0]) == 50  # not over the limit
    huge = Bipartite.from_edges("b", np.arange(5001), np.zeros(5001, np.int64))  # just over the default bound
    assert len(cooccurrence(huge, np.array([0]), np.array([1.0]))[0]) == 5000


def test_feature_columns_by_their_definitions():
    from viscover.candidates import features

    g = Bipartite.from_edges("b", np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 0, 0, 1, 2]),
                             left_ids=np.array([0, 1, 2, 3]))
    c = candidate_set(np.array([1, 2, 3]), np.array([4.0, 1.0, 0.0]), np.array([0.0, 2.0, 1.0]),
                      np.array([0.5, -0.2, 0.9]))
    attrs = ItemAttributes(labels=np.array([[0, 0, 6, -1], [7, -1, 7, 8]], np.int32),
                           domains=np.array([0, 1, 0, 0], np.int32))
    x = features(c, g, np.array([0]), attrs)
    assert x.matrix.dtype == np.float32 and x.shape == (3, len(FEATURES))
    columns = {name: x.column(name) for name in FEATURES}
    assert np.allclose(columns["pixie"], [1.0, 0.25, 0.0]) and np.allclose(columns["pixie_log"], np.log1p([4, 1, 0]))
    assert np.allclose(columns["cooccurrence"], [0.0, 1.0, 0.5])
    assert np.allclose(columns["cooccurrence_log"], np.log1p([0, 2, 1]))
    assert np.allclose(columns["visual"], [0.5, -0.2, 0.9])
    assert np.allclose(columns["popularity"], np.log1p([1, 3, 0]))  # boards per candidate
    # query 0 has labels (0, 7): node 1 matches task 0 only (code 0 is a label like any other), node 2 task 1
    # only (its -1 never matches), node 3 none
    assert np.allclose(columns["label_match"], [0.5, 0.5, 0.0])
    assert np.array_equal(columns["same_domain"], [0.0, 1.0, 1.0])
    assert np.allclose(columns["query_degree"], np.log1p(2))
    assert features(c.drop(np.ones(3, bool)), g, np.array([0]), attrs).shape == (0, len(FEATURES))
    assert not features(c, g, np.array([0]), None).matrix[:, 6:8].any()  # no attributes: no label or domain signal
    weak = candidate_set(np.array([1, 2, 3]), np.array([0.5, 0.25, 0.0]), np.array([0.2, 0.1, 0.0]),
                         np.zeros(3))  # best scores below 1 (e.g. small seed weights)
    columns = dict(zip(FEATURES, features(weak, g, np.array([0]), attrs).matrix.T))
    assert np.allclose(columns["pixie"], [1.0, 0.5, 0.0]) and np.allclose(columns["cooccurrence"], [1.0, 0.5, 0.0])


def test_candidate_sets_merge_by_node():
    """The union of what each generator proposed, each signal in its own column (0 where a generator did not
    propose the node), and who proposed it; nothing else (node 0 included) appears."""
    from viscover.candidates import CandidateSet

    c = CandidateSet.merge({"pixie": (np.array([5, 3]), np.array([2.0, 1.0])),
                            "visual": (np.array([7, 5]), np.array([0.9, 0.4])),
                            "co-occurrence": (np.zeros(0, np.int64), np.zeros(0))})
    assert c.nodes.tolist() == [3, 5, 7] and c.nodes.dtype == np.int64
    assert c.scores["pixie"].tolist() == [1.0, 2.0, 0.0] and c.scores["visual"].tolist() == [0.0, 0.4, 0.9]
    assert c.scores["co-occurrence"].tolist() == [0.0, 0.0, 0.0]
    assert [c.sources(i) for i in range(3)] == [["pixie"], ["pixie", "visual"], ["visual"]]
    assert len(CandidateSet.merge({})) == 0


def test_heuristic_ranks_walks_then_boards_then_looks_and_looks_first_when_cold():
    from viscover.rank import heuristic_score

    def row(pixie=0.0, cooc=0.0, visual=0.0):
        values = {"pixie": pixie, "pixie_log": 9.0, "cooccurrence": cooc, "cooccurrence_log": 9.0,
                  "visual": visual}  # the log columns must not count
        return np.array([values.get(name, 0.0) for name in FEATURES], np.float32)

    warm = heuristic_score(np.stack([row(pixie=1.0), row(cooc=1.0), row(visual=1.0), row(visual=-1.0), row()]),
                           cold=False)
    assert np.argsort(-warm, kind="stable").tolist() == [0, 1, 2, 3, 4] and warm[3] == warm[4]  # no negative looks
    ties = heuristic_score(np.stack([row(pixie=0.5, cooc=0.1), row(pixie=0.5, cooc=0.2),
                                     row(pixie=0.5, cooc=0.2, visual=0.1)]), cold=False)
    assert ties[0] < ties[1] < ties[2]  # equal walks: shared boards decide, then looks
    cold = heuristic_score(np.stack([row(visual=0.6), row(visual=0.5, pixie=1.0, cooc=1.0), row(visual=-0.5),
                                     row(pixie=1.0), row(cooc=0.5)]), cold=True)
    assert np.argsort(-cold, kind="stable").tolist() == [0, 1, 3, 4, 2] and cold[2] == 0.0
    assert heuristic_score(np.stack([row(visual=0.5, pixie=0.2), row(visual=0.5)]), cold=True)[0] > \
        heuristic_score(np.stack([row(visual=0.5, pixie=0.2), row(visual=0.5)]), cold=True)[1]  # graph breaks ties


def test_params_come_from_the_settings_in_one_place():
    """The engine and eval-related both take their parameters from here (they had drifted apart: one set the walk
    bias, the other the seed)."""
    settings = Settings(pixie_steps=1234, pixie_alpha=0.3, pixie_np=50, pixie_nv=2, pixie_bias=0.7,
                        dedup_threshold=0.1)
    p = RelatedParams.from_settings(settings, seed=9)
    assert p.pixie == PixieParams(steps=1234, alpha=0.3, n_p=50, n_v=2, bias=0.7, seed=9)
    assert p.dedup_threshold == 0.1 and RelatedParams.from_settings(settings).pixie.seed == 0
    assert (p.candidates.pixie, p.candidates.pool, p.candidates.cold_degree) == (p.pixie, p.pool, p.cold_degree)
    assert RelatedParams.from_settings(Settings()) == RelatedParams(pixie=PixieParams(bias=0.9))  # today's defaults


def test_an_unknown_ranking_signal_is_a_bad_request(catalogue):
    from viscover.errors import BadRequestError

    svc = service(catalogue)
    assert np.array_equal(svc.related([0], k=20, score_by="co-occurrence").nodes,
                          svc.related([0], k=20, score_by="cooccurrence").nodes)
    with pytest.raises(BadRequestError, match="blend, pixie, cooccurrence, visual"):
        svc.related([0], score_by="walks")


def test_features_by_name():
    from viscover.candidates import Features

    x = Features.from_columns(2, {"visual": np.array([0.5, 0.25]), "query_degree": 1.0})
    assert x.shape == (2, len(FEATURES)) and x.column("visual").tolist() == [0.5, 0.25]
    assert x.column("query_degree").tolist() == [1.0, 1.0] and not x.column("pixie").any()
    assert np.asarray(x, np.float64).dtype == np.float64 and np.array_equal(np.asarray(x), x.matrix)
    assert x.select(("query_degree", "visual")).tolist() == [[1.0, 0.5], [1.0, 0.25]]
    assert x.rows([1]).column("visual").tolist() == [0.25] and len(x.rows([])) == 0
    with pytest.raises(KeyError, match="no feature 'looks'"):
        x.column("looks")
    with pytest.raises(ValueError, match="unknown feature"):
        Features.from_columns(1, {"looks": 1.0})
    with pytest.raises(ValueError, match="missing feature"):
        Features(x.matrix[:, :2], FEATURES[:2]).select(FEATURES)
    with pytest.raises(ValueError, match="shape"):
        Features(np.zeros(3, np.float32))


def test_the_registry_refuses_clashing_generators(catalogue):
    from viscover.candidates import REGISTRY, CandidateSources, build_generators, register

    graph = catalogue[0]
    with pytest.raises(ValueError, match="already registered"):
        register("pixie", REGISTRY["pixie"])

    class Misnamed:
        name = "other"

        def __init__(self, sources):
            pass

    REGISTRY["misnamed"] = Misnamed
    try:
        with pytest.raises(ValueError, match="calls itself 'other'"):
            build_generators(CandidateSources(graph))
    finally:
        del REGISTRY["misnamed"]
    assert [g.name for g in build_generators(CandidateSources(graph))] == ["pixie", "co-occurrence", "visual"]


def test_features_for_normalises_by_the_whole_candidate_set_and_keeps_the_domain(catalogue):
    """Logged items are normalised by the maxima over everything the generators proposed, not over the logged few
    (a logged list without the most-walked item would otherwise inflate its walk signal); a wanted domain biases
    the walks behind features_for as it does those behind related."""
    svc = service(catalogue, visual=False)
    full = svc.related([3], k=20)
    top = np.argmax(full.features.column("pixie"))
    rest = np.nonzero(np.arange(len(full.nodes)) != top)[0]
    rows = svc.features_for([3], full.nodes[rest])
    assert np.allclose(rows, full.features.rows(rest), atol=1e-6) and rows.column("pixie").max() < 1.0
    biased = svc.related([3], k=20, want_domain=1)
    assert np.allclose(svc.features_for([3], biased.nodes, want_domain=1), biased.features, atol=1e-6)
    assert not np.allclose(svc.features_for([3], biased.nodes), biased.features, atol=1e-6)


def test_a_service_on_the_same_graph_answers_alike(catalogue):
    """on_graph (board-ranker training builds one per graph with memberships hidden) keeps the looks, the item
    attributes, the image ids and the parameters: on the same graph it answers exactly alike; it scores with the
    ranker it is given."""
    for svc in (service(catalogue), service(catalogue, visual=False)):
        same = svc.on_graph(svc.graph)
        for q in ([0], [3], [12], [5, 8]):
            a, b = svc.related(q, k=20), same.related(q, k=20)
            assert a.nodes.tolist() == b.nodes.tolist() and np.allclose(a.scores, b.scores)
            assert [a.explain(i) for i in range(len(a.nodes))] == [b.explain(i) for i in range(len(b.nodes))]

    class ByNode:
        name = "by-node"

        def score(self, x, cold=False):
            return -np.arange(len(x), dtype=np.float64)  # candidates in ascending node order

    ranked = service(catalogue).on_graph(service(catalogue).graph, ranker=ByNode()).related([3], k=5)
    assert ranked.nodes.tolist() == sorted(ranked.nodes.tolist()) and ranked.scores.tolist() == [0, -1, -2, -3, -4]


def test_candidate_set_columns_at_any_nodes():
    """at() reads the columns at any nodes (0 and not proposed where a node is no candidate); a missing column
    reads as zeros; drop() takes any true/false mask, 0/1 included."""
    from viscover.candidates import CandidateSet

    c = CandidateSet.merge({"pixie": (np.array([5, 3]), np.array([2.0, 1.0])),
                            "visual": (np.array([7]), np.array([0.9]))})
    at = c.at([7, 4, 3, 9])
    assert at.nodes.tolist() == [7, 4, 3, 9]
    assert at.scores["pixie"].tolist() == [0.0, 0.0, 1.0, 0.0] and at.scores["visual"].tolist() == [0.9, 0, 0, 0]
    assert at.proposed["pixie"].tolist() == [False, False, True, False]
    assert at.proposed["visual"].tolist() == [True, False, False, False]
    empty = CandidateSet.merge({}, ["pixie"]).at([1, 2])
    assert empty.scores["pixie"].tolist() == [0.0, 0.0] and not empty.proposed["pixie"].any()
    assert c.score("co-occurrence").tolist() == [0.0, 0.0, 0.0]
    assert c.drop(np.array([0, 1, 0])).nodes.tolist() == [3, 7]
    assert c.at([]).nodes.dtype == np.int64 and len(c.at([])) == 0


def test_feature_rows_are_float32_and_keep_their_names():
    """Bare matrices become float32 feature rows; rows chosen from features named otherwise keep those names;
    numpy gets the matrix itself, or a copy when it asks for one."""
    from viscover.candidates import Features

    assert Features.of(np.zeros((2, len(FEATURES)))).matrix.dtype == np.float32
    names = ("visual", "pixie")
    x = Features.from_columns(3, {"visual": np.array([0.1, 0.2, 0.3])}, names)
    assert x.names == names and x.rows([2, 0]).names == names and x.rows([2, 0]).column("visual").tolist() == \
        pytest.approx([0.3, 0.1])
    assert np.asarray(x) is x.matrix
    copied = np.array(x, copy=True)
    copied[:] = 7
    assert not (x.matrix == 7).any()
    assert np.asarray(x, dtype=np.float16).dtype == np.float16
    assert np.array(x, dtype=np.float16, copy=True).dtype == np.float16
    assert Features.of(x) is x


def test_a_query_is_prepared_by_its_definition(catalogue):
    """build_query against a direct computation: the index is searched for pool + len(query) neighbours of the
    weighted query vector; a warm query walks from its nodes on boards with their weights; a cold one (fewer
    memberships than cold_degree) also from its nearest neighbours that are on boards and not in the query, at
    most visual_seeds of them, weighted by their similarity clipped at 0."""
    from viscover.candidates import CandidateParams, PixieParams, build_query

    graph, index, _, _ = catalogue
    visual = VisualNeighbours(graph, index)
    unit, _ = visual.unit_vectors()
    degree = graph.left_degree()
    params = CandidateParams(pixie=PixieParams(seed=3), pool=5, cold_degree=1, visual_seeds=2)

    def expected_neighbours(q, w):
        mean = (unit[q] * np.asarray(w)[:, None]).sum(0)
        mean /= np.linalg.norm(mean)
        sims = unit @ mean
        order = np.argsort(-sims, kind="stable")[: params.pool + len(q)]
        return mean, order, sims[order]

    warm = build_query(graph, visual, [3, 12], [2.0, 0.5], params, want_domain=1)
    mean, order, sims = expected_neighbours([3, 12], [2.0, 0.5])
    assert not warm.cold and warm.want_domain == 1 and np.allclose(warm.vector, mean, atol=1e-5)
    # the same neighbours with the same similarities, best first (0 and 10 show one picture: their order may differ)
    assert set(warm.neighbours[0].tolist()) == set(order.tolist()) and np.allclose(warm.neighbours[1], sims, atol=1e-5)
    assert warm.seeds.tolist() == [3] and warm.seed_weights.tolist() == [2.0]  # 12 is on no board

    cold = build_query(graph, visual, [12], None, params)
    mean, order, sims = expected_neighbours([12], [1.0])
    assert set(cold.neighbours[0].tolist()) == set(order.tolist()) and np.allclose(cold.neighbours[1], sims, atol=1e-5)
    found, found_sims = cold.neighbours
    pick = [i for i, n in enumerate(found) if n != 12 and degree[n] > 0][: params.visual_seeds]
    assert cold.cold and cold.weights.tolist() == [1.0] and len(pick) == 2
    assert cold.seeds.tolist() == found[pick].tolist() and cold.seeds.dtype == np.int64
    assert np.allclose(cold.seed_weights, np.clip(found_sims[pick], 0, None), atol=1e-5)
    assert len(cold.neighbours[0]) == params.pool + 1
    every = build_query(graph, visual, [12], None, CandidateParams(pool=13, visual_seeds=20))  # all 13 others
    assert sorted(every.seeds.tolist()) == list(range(12))  # not 13: it is on no board, so no walk can start there
    unlike = build_query(graph, visual, [9], None, CandidateParams(pool=13, cold_degree=10, visual_seeds=20))
    sims_of = dict(zip(unlike.neighbours[0].tolist(), unlike.neighbours[1].tolist()))
    assert min(sims_of.values()) < 0  # unlike items: their walks start with weight 0, never a negative one
    assert unlike.seed_weights.tolist() == pytest.approx([1.0] + [max(sims_of[n], 0.0) for n in unlike.seeds[1:]])
    cold_on_boards = build_query(graph, visual, [3], None, CandidateParams(cold_degree=3, visual_seeds=2))
    nearest = [n for n in cold_on_boards.neighbours[0].tolist() if n != 3 and degree[n] > 0][:2]
    assert cold_on_boards.seeds.tolist() == [3, *nearest]  # the query node once, from its own boards
    assert build_query(graph, visual, [3, 12], [2, 1], params).seed_weights.dtype == np.float64
    assert build_query(graph, visual, [3], None, CandidateParams(cold_degree=3)).cold  # 2 memberships < 3
    assert not build_query(graph, visual, [3], None, CandidateParams(cold_degree=2)).cold
    blind = build_query(graph, None, [12], None, params)
    assert blind.vector is None and blind.cold and len(blind.seeds) == 0
    assert [(len(a), a.dtype) for a in blind.neighbours] == [(0, np.int64), (0, np.float32)]
