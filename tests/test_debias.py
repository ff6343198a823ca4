"""Position debiasing by its definitions: the isotonic fit against an exhaustive search, propensities from
hand-computed counts (prior smoothing, the random slice, positions outside the log), labels and weights.
(test_rank.py checks the whole learned ranker on a simulated log.)"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from viscover.rank.debias import (FLOOR, LabelParams, Propensity, debiased_labels, engaged, estimate_propensity,
                                  isotonic_decreasing)


def isotonic_by_search(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The weighted least-squares non-increasing fit, by trying every split into consecutive blocks: the optimum
    is constant on blocks at their weighted means, so the best split with non-increasing means is the answer."""
    best, best_err = None, np.inf
    n = len(y)
    for cuts in itertools.product([False, True], repeat=n - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        means = [np.average(y[a:b], weights=w[a:b]) for a, b in zip(bounds, bounds[1:])]
        if any(m2 > m1 + 1e-12 for m1, m2 in zip(means, means[1:])):
            continue
        fit = np.concatenate([np.full(b - a, m) for (a, b), m in zip(zip(bounds, bounds[1:]), means)])
        err = float((w * (y - fit) ** 2).sum())
        if err < best_err - 1e-12:
            best, best_err = fit, err
    return best


@pytest.mark.parametrize("seed", range(12))
def test_isotonic_fit_is_the_best_non_increasing_fit(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    y = rng.normal(size=n).round(1)  # rounding makes ties, which must not be pooled needlessly
    w = rng.uniform(0.2, 5.0, n)
    fit = isotonic_decreasing(y, w)
    assert fit.shape == y.shape and np.all(np.diff(fit) <= 1e-12)
    assert np.allclose(fit, isotonic_by_search(y, w), atol=1e-9)


def test_isotonic_by_hand():
    assert isotonic_decreasing(np.array([1.0, 4.0]), np.array([3.0, 1.0])).tolist() == [1.75, 1.75]
    assert isotonic_decreasing(np.array([2.0, 1.0, 1.0, 3.0]), np.array([1.0, 1.0, 2.0, 1.0])).tolist() == \
        [2.0, 1.5, 1.5, 1.5]
    assert isotonic_decreasing(np.array([2.0, 2.0, 1.0]), np.ones(3)).tolist() == [2.0, 2.0, 1.0]  # ties kept


def test_propensity_from_counts():
    # position 1: 4 of 10 engaged; position 2: 1 of 10; position 3: 3 of 5 (more than position 2: pooled)
    positions = [1] * 10 + [2] * 10 + [3] * 5
    engagement = [1] * 4 + [0] * 6 + [1] + [0] * 9 + [1] * 3 + [0] * 2
    p = estimate_propensity(positions, engagement, prior=0.0)
    pooled = (1 + 3) / 15  # positions 2 and 3 pooled by impressions: 4 of 15
    assert np.allclose(p.values, [1.0, pooled / 0.4, pooled / 0.4])
    assert p.impressions.tolist() == [10, 10, 5] and p.engagements.tolist() == [4, 1, 3] and not p.randomized
    overall = 8 / 25
    smoothed = estimate_propensity(positions, engagement, prior=5.0)
    rate = (np.array([4, 1, 3]) + 5 * overall) / (np.array([10, 10, 5]) + 5)
    assert np.allclose(smoothed.values, isotonic_decreasing(rate, np.array([10, 10, 5.0])) / rate[0])
    assert p([1, 2, 3, 9]).tolist() == pytest.approx([1.0, pooled / 0.4, pooled / 0.4, pooled / 0.4])  # beyond: last
    assert p([0, -3]).tolist() == [1.0, 1.0]  # (positions are 1-based; anything lower counts as the first)
    deep = estimate_propensity([1] * 100 + [2] * 100, [1] * 50 + [0] * 50 + [1] + [0] * 99, prior=0.0)
    assert deep.values.tolist() == [1.0, FLOOR]  # 0.02 of position 1's rate, clipped to the floor


def test_propensity_from_the_random_slice_only_when_there_is_one():
    positions = [1, 2, 1, 2, 1, 2]
    engagement = [1, 0, 1, 0, 1, 1]
    randomized = [False, False, False, False, True, True]
    p = estimate_propensity(positions, engagement, randomized, prior=0.0)
    assert p.randomized and p.impressions.tolist() == [1, 1] and p.values.tolist() == [1.0, 1.0]
    everything = estimate_propensity(positions, engagement, [False] * 6, prior=0.0)
    assert not everything.randomized and everything.impressions.tolist() == [3, 3]
    assert everything.values.tolist() == pytest.approx([1.0, 1 / 3])
    assert everything.to_dict() == {"estimated_from": "all traffic (confounded by the ranking)",
                                    "values": [1.0, 0.3333], "impressions": [3, 3], "engagements": [3, 1],
                                    "floor": FLOOR}
    assert p.to_dict()["estimated_from"] == "random slice"


def test_propensity_without_evidence_is_flat():
    nothing = estimate_propensity([], [])
    assert len(nothing.values) == 0 and nothing([1, 5]).tolist() == [1.0, 1.0]
    unengaged = estimate_propensity([1, 2, 2, 3], [0, 0, 0, 0])
    assert unengaged.values.tolist() == [1.0, 1.0, 1.0] and unengaged.impressions.tolist() == [1, 2, 1]
    assert estimate_propensity([0, -1], [1, 1]).values.size == 0  # no valid position at all
    # what was asked is kept even without evidence: the floor, and whether the random slice was used
    empty = estimate_propensity([0, 2], [1, 1], [1, 0], floor=0.1)  # the random slice's one impression: invalid
    assert empty.to_dict() == {"estimated_from": "random slice", "values": [], "impressions": [],
                               "engagements": [], "floor": 0.1}
    flat = estimate_propensity([1, 2], [0, 0], floor=0.2)
    assert flat.to_dict() == {"estimated_from": "all traffic (confounded by the ranking)", "values": [1.0, 1.0],
                              "impressions": [1, 1], "engagements": [0, 0], "floor": 0.2}
    assert estimate_propensity([1, 2], [0, 0], [0, 1]).randomized


def test_propensity_details():
    """The floor asked for is the one used and reported; counts are reported as whole numbers; a 0/1 random-slice
    mask (as read from a log file) selects like a boolean one; a position nobody saw carries no weight."""
    positions, engagement = [1] * 10 + [2] * 10, [1] * 5 + [0] * 5 + [1] + [0] * 9
    p = estimate_propensity(positions, engagement, prior=0.0, floor=0.3)
    assert p.values.tolist() == [1.0, 0.3] and p.floor == 0.3  # 0.2 clipped to the floor asked for
    assert json.dumps(p.to_dict()) == ('{"estimated_from": "all traffic (confounded by the ranking)", '
                                       '"values": [1.0, 0.3], "impressions": [10, 10], "engagements": [5, 1], '
                                       '"floor": 0.3}')
    mask = [0] * 15 + [1] * 5  # the last 5 impressions, all at position 2
    assert estimate_propensity(positions, engagement, mask).to_dict() == \
        estimate_propensity(positions, engagement, np.array(mask, bool)).to_dict()
    assert estimate_propensity(positions, engagement, mask).impressions.tolist() == [0, 5]
    # position 2 never shown: its smoothed rate is the overall rate, below position 3's, so they are pooled;
    # with no impressions it must not pull position 3's rate down
    gap = estimate_propensity([1] * 10 + [3] * 10 + [4] * 20, [1] * 9 + [0] + [1] * 6 + [0] * 4 + [1] + [0] * 19,
                              prior=5.0)
    overall = 16 / 40
    r1, r3, r4 = (9 + 5 * overall) / 15, (6 + 5 * overall) / 15, (1 + 5 * overall) / 25
    assert gap.impressions.tolist() == [10, 0, 10, 20]
    assert gap.values == pytest.approx([1.0, r3 / r1, r3 / r1, r4 / r1], abs=1e-6)


def test_labels_and_weights():
    p = Propensity(np.array([1.0, 0.5, 0.25]), np.ones(3), np.ones(3), randomized=True)
    assert engaged([1, 0, 0], [0, 1, 0]).tolist() == [True, True, False]  # clicks count by default
    assert engaged([1, 0, 0], [0, 1, 0], clicks=False).tolist() == [False, True, False]
    y, w = debiased_labels([1, 2, 3, 3], [1, 0, 0, 1], [0, 1, 0, 0], p)  # examination: negatives weigh e(p)
    assert y.dtype == np.float64 and y.tolist() == [1.0, 1.0, 0.0, 1.0] and w.tolist() == [1.0, 2.0, 0.25, 1.0]
    y, w = debiased_labels([1, 2, 3, 3], [1, 0, 0, 1], [0, 1, 0, 0], p, LabelParams(scheme="ipw"))
    assert w.tolist() == [1.0, 4.0, 1.0, 4.0]  # positives weigh (1 + save boost) / e(p)
    y, w = debiased_labels([1, 2, 3], [1, 1, 0], [0, 0, 0], p, LabelParams(clicks=False))
    assert y.tolist() == [0.0, 0.0, 0.0] and w.tolist() == [1.0, 0.5, 0.25]
    assert debiased_labels([1, 2, 3], [1, 0, 0], [0, 0, 0], p, LabelParams(debias=False))[1].tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="unknown debiasing scheme 'naive' \\(examination or ipw\\)"):
        debiased_labels([1], [1], [0], p, LabelParams(scheme="naive"))
