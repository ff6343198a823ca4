"""Training parts checked in isolation: NormSoftmax against a direct computation, class subsampling (also with
100k+ classes), the multi-task sampler's balance and mixing rules, masking of missing labels, the LR schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from viscover.train.loop import lr_factor
from viscover.train.losses import NormSoftmax
from viscover.train.model import UnifiedModel
from viscover.train.sampler import MultiTaskSampler


def direct_loss(x, proxies, labels, temperature, classes=None):
    """-log(exp(x.p_y/s) / sum_z exp(x.p_z/s)) averaged, in float64 loops, over `classes` (default: all)."""
    x = x.double()
    p = proxies.double()
    classes = list(range(len(p))) if classes is None else [int(c) for c in classes]
    total = 0.0
    for i in range(len(x)):
        xi = x[i] / x[i].norm()
        scores = {c: float(xi @ (p[c] / p[c].norm())) / temperature for c in classes}
        top = max(scores.values())
        log_sum = top + math.log(sum(math.exp(v - top) for v in scores.values()))
        total += log_sum - scores[int(labels[i])]
    return total / len(x)


@pytest.mark.parametrize("temperature", [0.05, 0.5])
def test_normsoftmax_equals_direct_computation(temperature):
    torch.manual_seed(0)
    loss = NormSoftmax(7, 5, temperature=temperature, sampled_classes=100)
    x = torch.randn(11, 5) * 3  # not normalised: the loss normalises
    labels = torch.randint(0, 7, (11,))
    value = float(loss(x, labels).detach())
    assert value == pytest.approx(direct_loss(x, loss.proxies.detach(), labels, temperature), rel=1e-5)


def test_subsampled_softmax_is_the_softmax_over_the_chosen_classes():
    torch.manual_seed(1)
    loss = NormSoftmax(500, 8, temperature=0.05, sampled_classes=40)
    x = torch.randn(12, 8)
    labels = torch.randint(0, 500, (12,))
    gen = torch.Generator().manual_seed(3)
    classes = loss.select_classes(labels, torch.Generator().manual_seed(3))
    assert len(classes) == 40 and len(torch.unique(classes)) == 40
    assert set(labels.tolist()) <= set(classes.tolist())
    value = float(loss(x, labels, gen).detach())  # same generator seed: the same classes
    assert value == pytest.approx(direct_loss(x, loss.proxies.detach(), labels, 0.05, classes), rel=1e-5)
    again = loss.select_classes(labels, torch.Generator().manual_seed(4))
    assert set(again.tolist()) != set(classes.tolist())  # a fresh sample each step


def test_gradients_reach_only_the_sampled_proxies():
    loss = NormSoftmax(1000, 4, sampled_classes=16)
    labels = torch.tensor([1, 2, 3])
    gen = torch.Generator().manual_seed(0)
    chosen = loss.select_classes(labels, torch.Generator().manual_seed(0))
    loss(torch.randn(3, 4), labels, gen).backward()
    touched = torch.nonzero(loss.proxies.grad.abs().sum(1)).flatten()
    assert set(touched.tolist()) <= set(chosen.tolist())


def test_trains_with_120k_classes_in_bounded_memory():
    """A label space of 120,000 classes: every step's softmax spans 1,024 of them, and learning still happens."""
    torch.manual_seed(0)
    n_classes, dim = 120_000, 32
    loss = NormSoftmax(n_classes, dim, temperature=0.05, sampled_classes=1024)
    shapes = []
    original = loss.logits
    loss.logits = lambda emb, classes=None: shapes.append(len(classes)) or original(emb, classes)
    centres = torch.nn.functional.normalize(torch.randn(n_classes, dim), dim=1)
    optimizer = torch.optim.SGD(loss.parameters(), lr=1.0, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    fixed = torch.randint(0, n_classes, (64,))
    before = float(loss(centres[fixed], fixed, torch.Generator().manual_seed(9)).detach())
    for _ in range(60):
        labels = torch.cat([fixed, torch.randint(0, n_classes, (64,))])
        value = loss(centres[labels] + 0.05 * torch.randn(len(labels), dim), labels, gen)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    after = float(loss(centres[fixed], fixed, torch.Generator().manual_seed(9)).detach())
    assert after < before * 0.5
    assert set(shapes) == {1024}  # never a full 120k-wide softmax


def test_class_selection_at_its_edges():
    gen = torch.Generator().manual_seed(0)
    one = NormSoftmax(1, 4)  # a task with a single class: a softmax over one class, loss 0
    assert float(one(torch.randn(3, 4), torch.zeros(3, dtype=torch.long)).detach()) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="^NormSoftmax needs at least one class$"):
        NormSoftmax(0, 4)
    exact = NormSoftmax(16, 4, sampled_classes=16)  # exactly as many classes as sampled: all, no sampling
    assert exact.select_classes(torch.tensor([3, 5]), gen).tolist() == list(range(16))
    crowded = NormSoftmax(100, 4, sampled_classes=4)  # more classes in the batch than sampled: the batch's own
    assert crowded.select_classes(torch.arange(10, 20), gen).tolist() == list(range(10, 20))
    few = NormSoftmax(100, 4, sampled_classes=5)  # two extra classes: fewer than the oversampling margin
    chosen = few.select_classes(torch.tensor([9, 7, 9, 8]), gen).tolist()
    assert chosen[:3] == [7, 8, 9] and len(set(chosen)) == 5 and not {7, 8, 9} & set(chosen[3:])


def test_sampled_classes_are_uniform_over_the_negatives():
    """The extra classes are a uniform sample of the classes not in the batch (Zhai & Wu 2018's subsampling):
    over many steps every negative class is drawn about equally often, positives never twice."""
    loss = NormSoftmax(50, 4, sampled_classes=10)
    labels = torch.tensor([0, 1, 1])
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(50)
    for _ in range(3000):
        chosen = loss.select_classes(labels, gen)
        assert chosen[:2].tolist() == [0, 1] and len(torch.unique(chosen)) == 10
        counts[chosen[2:]] += 1
    expected = 3000 * 8 / 48  # 500 draws per negative class
    assert counts[:2].tolist() == [0, 0]
    assert float((counts[2:] - expected).abs().max()) < 0.15 * expected  # binomial sd about 20, i.e. 4%


def test_normsoftmax_defaults_and_misuse():
    loss = NormSoftmax(10, 256)
    assert (loss.temperature, loss.sampled_classes) == (0.05, 2048)  # as published and documented
    assert float(loss.proxies.detach().norm(dim=1).mean()) == pytest.approx(1.0, abs=0.1)  # randn / sqrt(d)
    for emb, labels in ((torch.randn(3), torch.zeros(3, dtype=torch.long)),
                        (torch.randn(3, 256), torch.zeros(3, 1, dtype=torch.long)),
                        (torch.randn(3, 256), torch.zeros(2, dtype=torch.long))):
        with pytest.raises(ValueError, match="expected embeddings \\(N, d\\) and labels \\(N,\\)"):
            loss(emb, labels)


def test_missing_labels_contribute_nothing():
    torch.manual_seed(0)
    model = UnifiedModel(in_dim=10, dim=6, classes={"a": 4, "b": 3}, temperature=0.1, sampled_classes=100)
    x = torch.randn(8, 10)
    a = torch.tensor([0, 1, -1, 2, -1, 3, 0, -1])
    b = torch.tensor([-1, -1, 2, 0, 1, -1, -1, -1])
    total, parts = model.loss(x, {"a": a, "b": b})
    emb = model.head(x)
    want_a = model.losses["a"](emb[a >= 0], a[a >= 0])
    want_b = model.losses["b"](emb[b >= 0], b[b >= 0])
    assert total.item() == pytest.approx((want_a + want_b).item(), rel=1e-6)
    assert parts == pytest.approx({"a": want_a.item(), "b": want_b.item()}, rel=1e-6)
    x2 = x.clone()  # row 2 has no label for task a: changing it must not change task a's loss
    x2[2] += 10
    assert model.loss(x2, {"a": a})[0].item() == pytest.approx(want_a.item(), rel=1e-6)


def test_binary_loss_sees_the_sign_bits():
    torch.manual_seed(0)
    model = UnifiedModel(in_dim=10, dim=6, classes={"a": 4}, temperature=0.1, sampled_classes=100, binary_weight=1.0)
    x, a = torch.randn(5, 10), torch.tensor([0, 1, 2, 3, 0])
    total, _ = model.loss(x, {"a": a})
    emb = model.head(x)
    want = model.losses["a"](emb, a) + model.losses["a"](torch.sign(emb), a)
    assert total.item() == pytest.approx(want.item(), rel=1e-6)
    total.backward()
    assert model.head.proj.weight.grad.abs().sum() > 0  # the straight-through path passes gradients


def streams_fixture():
    rng = np.random.default_rng(0)
    big = (np.arange(0, 300), rng.integers(0, 30, 300))  # 30 classes
    small = (np.arange(300, 340), np.repeat(np.arange(4), 10))  # 4 classes
    tiny = (np.arange(340, 346), np.array([0, 0, 0, 1, 1, 2]))  # classes smaller than per_class
    return [big, small, tiny]


def test_sampler_mixes_streams_evenly_and_balances_classes():
    streams = streams_fixture()
    sampler = MultiTaskSampler(streams, batch_size=48, per_class=4, seed=1)
    assert sampler.share == 16 and sampler.steps_per_epoch == math.ceil(300 / 16)
    label = {int(r): int(c) for rows, codes in streams for r, c in zip(rows, codes)}
    for _ in range(20):
        rows, which = sampler.batch()
        assert np.bincount(which).tolist() == [16, 16, 16]  # every stream its equal share
        for s, (stream_rows, _) in enumerate(streams):
            mine = rows[which == s]
            assert set(mine) <= set(stream_rows)  # rows come from their own stream
            counts = np.bincount([label[int(r)] for r in mine])
            counts = counts[counts > 0]
            if s == 0:
                assert len(counts) == 4 and set(counts) == {4}  # 4 classes x 4 images
            elif s == 1:
                assert len(counts) == 4 and set(counts) == {4}
            else:
                assert len(counts) == 3 and counts.sum() == 16  # all 3 classes, topped up evenly


def test_sampler_is_reproducible_and_resumable():
    a = MultiTaskSampler(streams_fixture(), 48, 4, seed=7)
    b = MultiTaskSampler(streams_fixture(), 48, 4, seed=7)
    first = [a.batch()[0] for _ in range(3)]
    assert all(np.array_equal(x, b.batch()[0]) for x in first)
    state = a.state()
    nxt = a.batch()[0]
    c = MultiTaskSampler(streams_fixture(), 48, 4, seed=0)
    c.restore(state)
    assert np.array_equal(c.batch()[0], nxt)


def test_lr_schedule():
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(99, 100, 10) < 0.01 and lr_factor(55, 100, 10) == pytest.approx(0.5)


def test_itq_rotation_keeps_cosines_and_lowers_quantisation_error():
    from viscover.train.itq import itq_rotation, quantization_error

    rng = np.random.default_rng(0)
    v = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16))  # correlated dimensions: bits waste information
    r = itq_rotation(v, iterations=30)
    assert np.allclose(r @ r.T, np.eye(16), atol=1e-8)
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert np.allclose(u @ u.T, (u @ r) @ (u @ r).T, atol=1e-8)  # every cosine unchanged
    assert quantization_error(v, r) < 0.9 * quantization_error(v)


def test_validation_equals_brute_force_and_never_retrieves_the_query():
    """`validate` on a stream's own validation rows (queries = gallery) and across domains (photo -> catalog),
    checked against a loop over the definitions with each query left out of its own ranking."""
    from test_metrics import brute_force
    from viscover.train.data import Stream, TrainData
    from viscover.train.loop import validate

    rng = np.random.default_rng(3)
    n, width, dim = 60, 24, 8
    domain = np.array(["photo"] * 45 + ["catalog"] * 15)
    labels = np.concatenate([rng.integers(0, 6, 45), np.arange(15) % 6])
    is_val = np.zeros(n, bool)
    is_val[30:45] = True
    photo_val, catalog = np.arange(30, 45), np.arange(45, 60)
    streams = [Stream("m.csv", "product", "photo", np.arange(30), photo_val),
               Stream("m.csv", "product", "catalog", catalog, np.zeros(0, np.int64))]
    data = TrainData([f"img{i}.jpg" for i in range(n)], list(domain), is_val, {"product": labels},
                     {"product": [str(c) for c in range(6)]}, streams)
    features = rng.normal(size=(n, width)).astype(np.float32)
    torch.manual_seed(0)
    model = UnifiedModel(width, dim, {"product": 6}, 0.05, 2048)
    got = validate(model, features, data)
    assert set(got) == {"m/product/photo", "m/product/photo->catalog"}

    with torch.no_grad():
        emb = model.head(torch.from_numpy(features)).numpy().astype(np.float64)
    floats = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    signs = np.where(emb > 0, 1.0, -1.0)
    for name, gallery, inside in (("m/product/photo", photo_val, True), ("m/product/photo->catalog", catalog, False)):
        self_index = np.arange(len(photo_val)) if inside else np.full(len(photo_val), -1)
        f = brute_force(floats[photo_val] @ floats[gallery].T, labels[photo_val], labels[gallery], self_index, (1,))
        b = brute_force(signs[photo_val] @ signs[gallery].T, labels[photo_val], labels[gallery], self_index, (1,))
        assert got[name]["recall@1"] == pytest.approx(f["recall@1"], abs=1e-9), name
        assert got[name]["map@r"] == pytest.approx(f["map@r"], abs=1e-9), name
        assert got[name]["binary_recall@1"] == pytest.approx(b["recall@1"], abs=1e-9), name
        assert got[name]["queries"] == f["evaluated_queries"]
    assert got["m/product/photo"]["recall@1"] < 1.0  # random features: retrieving itself would make it 1.0
