"""Recall@K and MAP@R checked against a direct, loop-by-loop implementation of their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from viscover.metrics import ranking_metrics


def brute_force(scores, q_labels, g_labels, self_index, ks):
    """Sort the whole gallery for each query (ties by gallery order), skip the query itself, apply definitions."""
    recalls = {k: [] for k in ks}
    aps = []
    for i in range(len(q_labels)):
        ranked = sorted((j for j in range(len(g_labels)) if j != self_index[i]), key=lambda j: (-scores[i][j], j))
        rel = [g_labels[j] == q_labels[i] for j in ranked]
        r = sum(rel)
        if r == 0:
            continue
        for k in ks:
            recalls[k].append(any(rel[:k]))
        precision_sum = 0.0
        hits = 0
        for pos in range(r):  # MAP@R: only the first R positions count
            if rel[pos]:
                hits += 1
                precision_sum += hits / (pos + 1)
        aps.append(precision_sum / r)
    out = {f"recall@{k}": float(np.mean(v)) if v else 0.0 for k, v in recalls.items()}
    out["map@r"] = float(np.mean(aps)) if aps else 0.0
    out["evaluated_queries"] = len(aps)
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("discrete", [False, True])
def test_matches_brute_force(seed, discrete):
    rng = np.random.default_rng(seed)
    ng, nq, classes = int(rng.integers(20, 60)), int(rng.integers(5, 30)), int(rng.integers(2, 8))
    g_labels = rng.integers(0, classes, ng)
    q_labels = rng.integers(0, classes + 1, nq)  # class `classes` has no gallery item: left out
    self_index = np.where(rng.random(nq) < 0.5, rng.integers(0, ng, nq), -1)
    q_labels = np.where(self_index >= 0, g_labels[np.maximum(self_index, 0)], q_labels)
    # discrete scores (like Hamming distances) create many ties, exercising the tie-break rule
    scores = rng.integers(-5, 5, (nq, ng)).astype(float) if discrete else rng.normal(size=(nq, ng))
    scores[rng.random((nq, ng)) < 0.1] = -np.inf  # e.g. masked-out items: still ranked, after everything else
    got = ranking_metrics(lambda rows: scores[rows], q_labels, g_labels, self_index, ks=(1, 3, 10), block=7)
    want = brute_force(scores, q_labels, g_labels, self_index, (1, 3, 10))
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    assert got["queries_without_match"] == nq - want["evaluated_queries"]


def test_hand_computed_case():
    # gallery labels a a b b; query label a, excluded from itself at position 0
    scores = np.array([[9.0, 1.0, 8.0, 2.0]])  # ranking without self: 2(b) 3(b) 1(a) -> first a at rank 3
    out = ranking_metrics(lambda r: scores[r], np.array(["a"]), np.array(["a", "a", "b", "b"]), np.array([0]),
                          ks=(1, 2, 3))
    assert (out["recall@1"], out["recall@2"], out["recall@3"]) == (0.0, 0.0, 1.0)
    assert out["map@r"] == 0.0  # R = 1 and the relevant item is not at rank 1


def test_self_is_never_retrieved():
    scores = np.eye(4) * 10  # every query's best match is itself
    labels = np.array([0, 0, 1, 1])
    out = ranking_metrics(lambda r: scores[r], labels, labels, np.arange(4), ks=(1,))
    assert out["recall@1"] == 0.5  # after excluding itself, ties go by gallery order: only queries 1 and 3 hit
    perfect = ranking_metrics(lambda r: scores[r], labels, labels, None, ks=(1,))
    assert perfect["recall@1"] == 1.0 and perfect["map@r"] == pytest.approx(0.75)


@pytest.mark.parametrize("seed", range(4))
def test_large_gallery_matches_brute_force(seed):
    """Galleries over 4x the depth take the partition path of the top-k selection: it must rank exactly like a
    full stable sort, ties at the cut-off included."""
    rng = np.random.default_rng(100 + seed)
    ng, nq = 400, 40
    g_labels = rng.integers(0, 150, ng)  # few items per label: depth stays 10, far below the gallery size
    self_index = np.where(rng.random(nq) < 0.5, rng.integers(0, ng, nq), -1)
    q_labels = np.where(self_index >= 0, g_labels[np.maximum(self_index, 0)], rng.integers(0, 150, nq))
    scores = rng.integers(-3, 3, (nq, ng)) if seed % 2 else rng.normal(size=(nq, ng))  # ints: no float copy given
    if seed >= 2:
        scores = scores - 10  # every score negative (e.g. negated distances): the cut-off is a negative score too
    got = ranking_metrics(lambda rows: scores[rows], q_labels, g_labels, self_index, ks=(1, 5, 10), block=16)
    want = brute_force(scores, q_labels, g_labels, self_index, (1, 5, 10))
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_degenerate_galleries():
    """No gallery, one label, labels absent from the gallery and queries without any match give zeros and counts,
    never an error; a block of queries without matches does not end the evaluation."""
    empty = ranking_metrics(lambda r: np.zeros((len(r), 0)), np.array([1, 2]), np.array([], int), ks=(1,))
    assert (empty["recall@1"], empty["map@r"], empty["queries_without_match"]) == (0.0, 0.0, 2)
    one = ranking_metrics(lambda r: np.ones((len(r), 3)), np.array([7, 9]), np.array([7, 7, 7]), ks=(1,))
    assert (one["recall@1"], one["evaluated_queries"], one["queries_without_match"]) == (1.0, 1, 1)
    none = ranking_metrics(lambda r: np.ones((len(r), 2)), np.array([5, 6]), np.array([1, 2]), ks=(1,))
    assert (none["recall@1"], none["map@r"], none["evaluated_queries"]) == (0.0, 0.0, 0)
    labels = np.array([0, 1, 2, 3, 3, 3])  # queries 0-2 have no match (block 1); 3-5 find each other (block 2)
    same = (labels[:, None] == labels[None, :]).astype(float)
    later = ranking_metrics(lambda r: same[r], labels, labels, np.arange(6), ks=(1,), block=3)
    assert (later["recall@1"], later["evaluated_queries"]) == (1.0, 3)


def test_scores_handed_in_are_not_changed():
    """The self-exclusion writes -inf into a copy, never into the caller's array (a view of it here)."""
    scores = np.arange(16, dtype=np.float64).reshape(4, 4)
    before = scores.copy()
    labels = np.array([0, 0, 1, 1])
    ranking_metrics(lambda r: scores[r[0]:r[-1] + 1], labels, labels, np.arange(4), ks=(1,))
    assert np.array_equal(scores, before)
