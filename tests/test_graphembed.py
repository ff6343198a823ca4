"""PinSage graph embeddings: loss, walk neighbourhoods, training quality, exact resume, inference paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from viscover.graph.bipartite import Bipartite
from viscover.graph.holdout import hidden_memberships
from viscover.graph.synthetic import synthetic_graph
from viscover.graphembed import GraphTrainConfig, PinSage, embed_items, embed_new, node_features, train_graph
from viscover.graphembed.infer import layer_outputs
from viscover.graphembed.loss import max_margin_loss
from viscover.graphembed.neighbourhoods import visit_bands, walk_neighbourhoods
from viscover.graphembed.pairs import board_pairs, hard_negatives, walk_pairs
from viscover.metrics import related_metrics


@pytest.fixture(scope="module")
def planted():
    """2,000 items, 300 boards, 60 communities; content = community centre + heavy noise."""
    syn = synthetic_graph(n_items=2000, n_boards=300, n_edges=15000, n_communities=60, seed=3)
    return syn, syn.community_looks(32, 3.0, 3)


def small_graph() -> Bipartite:
    """Two disjoint boards of 4 items, one bridge item on both, and an item without boards."""
    left = [0, 1, 2, 3, 4, 5, 6, 7, 8, 8]
    right = [0, 0, 0, 0, 1, 1, 1, 1, 0, 1]
    return Bipartite.from_edges("t", np.array(left), np.array(right), left_ids=np.arange(10))


# ---- loss -----------------------------------------------------------------------------------------------------
def test_loss_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    b, h, d, margin = 5, 3, 4, 0.3
    q, p = torch.randn(b, d, generator=g), torch.randn(b, d, generator=g)
    hard = torch.randn(b, h, d, generator=g)
    mask = torch.rand(b, h, generator=g) > 0.4
    expected = 0.0
    for i in range(b):
        terms = [max(0.0, float(q[i] @ p[j] - q[i] @ p[i]) + margin) for j in range(b) if j != i]
        terms += [max(0.0, float(q[i] @ hard[i, k] - q[i] @ p[i]) + margin) for k in range(h) if mask[i, k]]
        expected += sum(terms) / len(terms)
    expected /= b
    assert float(max_margin_loss(q, p, hard, mask, margin)) == pytest.approx(expected, rel=1e-5)
    no_hard = np.mean([np.mean([max(0.0, float(q[i] @ p[j] - q[i] @ p[i]) + margin) for j in range(b) if j != i])
                       for i in range(b)])
    assert float(max_margin_loss(q, p, None, None, margin)) == pytest.approx(no_hard, rel=1e-5)


# ---- neighbourhoods, pairs ----------------------------------------------------------------------------------------
def test_neighbourhoods_are_weighted_co_board_items_and_seeded():
    g = small_graph()
    nb = walk_neighbourhoods(g, 4, steps=400, alpha=1.0, seed=1)  # alpha 1: every visit is one hop away
    assert nb.index.shape == (10, 4) and nb.index.dtype == np.int32 and nb.weight.dtype == np.float32
    assert np.all(nb.index[9] == -1) and np.all(nb.weight[9] == 0)  # no boards: empty neighbourhood
    for u in range(9):
        mates = set(np.concatenate([g.members_of(int(b)) for b in g.groups_of(u)]).tolist()) - {u}
        real = nb.index[u][nb.index[u] >= 0]
        assert set(real.tolist()) <= mates and len(real) == min(4, len(mates))
        assert nb.weight[u].sum() == pytest.approx(1.0, abs=1e-6)
        assert np.all(np.diff(nb.weight[u][nb.index[u] >= 0]) <= 0)  # most visited first
        assert np.all(nb.weight[u][nb.index[u] < 0] == 0)
    again = walk_neighbourhoods(g, 4, steps=400, alpha=1.0, seed=1)
    assert np.array_equal(again.index, nb.index) and np.array_equal(again.weight, nb.weight)
    other = walk_neighbourhoods(g, 4, steps=400, alpha=1.0, seed=2)
    assert not np.array_equal(other.weight, nb.weight)


def test_pairs_share_a_board_and_hard_negatives_avoid_the_positive(planted):
    syn, _ = planted
    g = syn.graph
    pairs = board_pairs(g, 5, np.random.default_rng(0))
    assert len(pairs) <= 5 * g.n_right and np.all(pairs[:, 0] != pairs[:, 1])
    for u, v in pairs[:200]:
        assert set(g.groups_of(int(u))) & set(g.groups_of(int(v)))
    bands = visit_bands(g, steps=2000, seed=0, pool=16)
    negs, mask = hard_negatives(bands, pairs[:, 0], pairs[:, 1], 3, np.random.default_rng(1))
    assert negs.shape == (len(pairs), 3) and mask.mean() > 0.9
    assert not np.any(mask & ((negs == pairs[:, 1:2]) | (negs == pairs[:, :1])))


def test_walk_pairs_are_co_visited_and_follow_the_visit_shares():
    g = small_graph()
    nb = walk_neighbourhoods(g, 4, steps=400, alpha=1.0, seed=1)
    pairs = walk_pairs(nb.index, nb.weight, 2000, np.random.default_rng(0))
    assert pairs.dtype == np.int64 and not np.any(pairs[:, 0] == 9)  # no walk neighbourhood: no pairs
    assert np.all(pairs[:, 0] != pairs[:, 1])
    for u in range(9):
        mine = pairs[pairs[:, 0] == u, 1]
        assert len(mine) == 2000 and set(mine.tolist()) <= set(nb.index[u][nb.index[u] >= 0].tolist())
        for v, w in zip(nb.index[u], nb.weight[u]):  # drawn in proportion to the visit share
            if v >= 0:
                assert np.mean(mine == v) == pytest.approx(float(w), abs=0.05)


# ---- training ------------------------------------------------------------------------------------------------------
FAST = dict(dim=32, hidden=64, epochs=4, pairs_per_board=20, batch=128, val_pairs=100, hard_cap=3, lr=1e-3, seed=0)


def ranked_by_cosine(vectors: np.ndarray, queries: np.ndarray, k: int) -> list[np.ndarray]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    out = []
    for q in queries:
        sims = unit @ unit[q]
        sims[q] = -np.inf
        out.append(np.argsort(-sims, kind="stable")[:k])
    return out


def test_training_beats_content_alone_on_hidden_memberships(planted):
    syn, content = planted
    full = syn.graph
    items, boards = hidden_memberships(full, 300, seed=0)
    train = full.without_edges(items, boards)
    result = train_graph(train, content, GraphTrainConfig(**FAST))
    relevant = [full.members_of(int(b))[full.members_of(int(b)) != q] for q, b in zip(items, boards)]
    graph = related_metrics(ranked_by_cosine(result.embeddings, items, 10), relevant, (10,))
    visual = related_metrics(ranked_by_cosine(content, items, 10), relevant, (10,))
    assert graph["hit@10"] > visual["hit@10"] + 0.1, (graph, visual)
    assert np.allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)
    # an item left without boards is embedded from its visual neighbours, exactly as embed_new would
    cold = np.nonzero(train.left_degree() == 0)[0]
    warm = np.nonzero(train.left_degree() > 0)[0]
    assert len(cold) and np.all(result.neighbourhoods.index[cold] == -1)
    centred = content - content.mean(axis=0)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    layers = layer_outputs(result.model, result.inference_neighbourhoods, result.features)
    for u in cold[:3]:
        sims = unit[warm] @ unit[u]
        near = np.argsort(-sims)[:10]
        new = embed_new(result.model, result.features[u], warm[near], np.maximum(sims[near], 0), layers)
        assert np.allclose(new, result.embeddings[u], atol=1e-5)
    history = result.report["history"]
    assert len(history) == 4 and [h["hard"] for h in history] == [0, 1, 2, 3]
    assert history[-1]["val_hit@10"] > history[0]["val_hit@10"] * 0.8 and history[-1]["loss"] < history[0]["loss"]


def test_resume_continues_exactly(planted, tmp_path):
    syn, content = planted
    cfg = GraphTrainConfig(**{**FAST, "epochs": 2, "pairs_per_board": 4})
    whole = train_graph(syn.graph, content, cfg, out=tmp_path / "a")
    train_graph(syn.graph, content, GraphTrainConfig(**{**FAST, "epochs": 1, "pairs_per_board": 4}),
                out=tmp_path / "b")
    resumed = train_graph(syn.graph, content, cfg, out=tmp_path / "b", resume=True)
    for (name, a), (_, b) in zip(whole.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert [h["loss"] for h in resumed.report["history"]] == [h["loss"] for h in whole.report["history"]]


# ---- inference ------------------------------------------------------------------------------------------------------
def naive_embedding(model: PinSage, u: int, nb, feats: torch.Tensor) -> torch.Tensor:
    """The paper's recursion, written out for one node, one neighbour at a time."""
    def h(k: int, v: int) -> torch.Tensor:
        if k == 0:
            return feats[v]
        conv = model.convs[k - 1]
        pooled = torch.zeros(conv.Q.out_features)
        for n, w in zip(nb.index[v], nb.weight[v]):
            if n >= 0:
                pooled = pooled + float(w) * torch.relu(conv.Q.weight @ h(k - 1, int(n)) + conv.Q.bias)
        z = torch.relu(conv.W.weight @ torch.cat([h(k - 1, v), pooled]) + conv.W.bias)
        return z / z.norm().clamp_min(1e-12)
    e = model.out.weight @ h(len(model.convs), u) + model.out.bias
    if model.skip is not None:
        e = e + model.skip.weight @ feats[u]
    return e / e.norm()


@pytest.mark.parametrize("skip", [False, True])
def test_embed_items_equals_naive_and_batch_paths(planted, skip):
    syn, content = planted
    g = syn.graph
    nb = walk_neighbourhoods(g, 6, steps=300, seed=0)
    feats = node_features(g, content)
    torch.manual_seed(0)
    model = PinSage(feats.shape[1], hidden=16, dim=8, skip=skip)
    emb = embed_items(model, nb, feats, batch=333)
    nodes = np.array([0, 5, 17, 999, 1998] + list(np.nonzero(g.left_degree() == 0)[0][:1]))
    with torch.no_grad():
        naive = torch.stack([naive_embedding(model, int(u), nb, torch.from_numpy(feats)) for u in nodes]).numpy()
        batched = model(nodes, nb, torch.from_numpy(feats)).numpy()
    assert np.allclose(emb[nodes], naive, atol=1e-5)
    assert np.allclose(emb[nodes], batched, atol=1e-5)


@pytest.mark.parametrize("skip", [False, True])
def test_new_item_from_its_visual_neighbours(planted, skip):
    syn, content = planted
    g = syn.graph
    nb = walk_neighbourhoods(g, 10, steps=300, seed=0)
    feats = node_features(g, content)
    torch.manual_seed(1)
    model = PinSage(feats.shape[1], hidden=32, dim=16, skip=skip)
    emb = embed_items(model, nb, feats)
    layers = layer_outputs(model, nb, feats)
    u = int(np.argmax(g.left_degree()))
    real = nb.index[u] >= 0
    exact = embed_new(model, feats[u], nb.index[u][real], nb.weight[u][real], layers)
    assert np.allclose(exact, emb[u], atol=1e-5)  # the same neighbourhood: the same embedding
    similar = embed_new(model, feats[u], nb.index[u][real], np.ones(real.sum()), layers)  # similarity weights
    others = emb @ similar
    assert float(similar @ emb[u]) > 0.9 and float(similar @ emb[u]) >= np.sort(others)[-3]
