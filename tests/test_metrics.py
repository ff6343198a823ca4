"""Recall@K and MAP@R checked against a direct, loop-by-loop implementation of their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from viscover.eval.metrics import ranking_metrics


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
