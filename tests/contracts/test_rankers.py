"""The contract of a ranker, checked for every ranker: the heuristic, and LightGBM trained on a small seeded problem
(two of the relatedness signals decide a hidden label, the rest is noise) and on features of the hand-made catalogue
of test_related_service.py (label: shares a board with the query). Shapes, empty input, determinism, scores that
never fall when a relatedness signal rises (MONOTONE), features read by name, and a save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest

from test_related_service import BOARDS, catalogue, service  # noqa: F401  (the hand-made catalogue fixture)
from viscover.candidates import FEATURES, Features
from viscover.rank import HeuristicRanker, LightGBMRanker, load_ranker
from viscover.rank.ranker import MONOTONE, RankParams, fit_ranker

RANKERS = ["heuristic", "lightgbm-seeded", "lightgbm-catalogue"]


def seeded_problem(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows in [0, 1) and labels drawn with probability rising in pixie and visual."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, len(FEATURES))).astype(np.float32)
    columns = Features(x)
    p = 0.05 + 0.6 * columns.column("pixie") * columns.column("visual") + 0.3 * columns.column("cooccurrence")
    return x, (rng.random(n) < p).astype(np.float64)


def catalogue_problem(catalogue) -> tuple[np.ndarray, np.ndarray]:  # noqa: F811
    """Every (query, item) pair of the hand-made catalogue as `related` computes its features; label: a board-mate."""
    svc = service(catalogue)
    mates = {n: {m for members in BOARDS.values() if n in members for m in members} - {n} for n in range(14)}
    xs, ys = [], []
    for q in range(14):
        others = np.array([n for n in range(14) if n != q])
        xs.append(svc.features_for([q], others).matrix)
        ys.append(np.isin(others, list(mates[q])))
    return np.concatenate(xs), np.concatenate(ys).astype(np.float64)


def train(x: np.ndarray, y: np.ndarray, seed: int = 0) -> LightGBMRanker:
    return fit_ranker(x, y, RankParams(seed=seed, rounds=40, min_data_in_leaf=5), objective="binary")


@pytest.fixture(scope="module")
def rankers(catalogue) -> dict:  # noqa: F811
    return {"heuristic": HeuristicRanker(), "lightgbm-seeded": train(*seeded_problem()),
            "lightgbm-catalogue": train(*catalogue_problem(catalogue))}


@pytest.fixture(params=RANKERS)
def ranker(request, rankers):
    return rankers[request.param]


@pytest.fixture(scope="module")
def rows(catalogue) -> Features:  # noqa: F811
    """Rows to score: random ones and real ones of the hand-made catalogue."""
    rng = np.random.default_rng(1)
    real, _ = catalogue_problem(catalogue)
    return Features(np.concatenate([rng.random((200, len(FEATURES))).astype(np.float32), real]))


def test_one_finite_score_per_row(ranker, rows):
    for cold in (False, True):
        scores = ranker.score(rows, cold=cold)
        assert scores.shape == (len(rows),) and np.all(np.isfinite(scores))
    assert ranker.score(rows.rows(np.arange(7))).shape == (7,)


def test_no_rows_no_scores(ranker):
    for empty in (Features(np.zeros((0, len(FEATURES)), np.float32)), np.zeros((0, len(FEATURES)), np.float32)):
        assert ranker.score(empty).shape == (0,) and ranker.score(empty, cold=True).shape == (0,)


def test_bad_rows_are_refused(ranker):
    with pytest.raises(ValueError, match="shape"):
        ranker.score(np.zeros((3, len(FEATURES) - 1), np.float32))


def test_deterministic(ranker, rows):
    assert np.array_equal(ranker.score(rows), ranker.score(rows))


def test_training_is_deterministic_given_the_seed():
    x, y = seeded_problem()
    a, b = train(x, y, seed=4), train(x, y, seed=4)
    assert a.booster.model_to_string() == b.booster.model_to_string()


@pytest.mark.parametrize("feature", MONOTONE)
def test_more_evidence_of_relatedness_never_lowers_the_score(ranker, rows, feature):
    """Raising one relatedness signal (walk visits, shared boards, looks, label agreement) keeps every score where
    it was or higher, for warm and cold queries."""
    for step in (0.05, 0.3, 1.0):
        raised = rows.matrix.copy()
        raised[:, FEATURES.index(feature)] += step
        for cold in (False, True):
            assert np.all(ranker.score(Features(raised), cold=cold) >= ranker.score(rows, cold=cold) - 1e-9), step


def test_features_are_read_by_name(ranker, rows):
    """Columns in another order, or an extra column a newer version might add, change nothing; a bare matrix is
    read in FEATURES order."""
    order = np.random.default_rng(2).permutation(len(FEATURES))
    shuffled = Features(rows.matrix[:, order], tuple(FEATURES[i] for i in order))
    extra = Features(np.concatenate([rows.matrix, np.ones((len(rows), 1), np.float32)], axis=1),
                     FEATURES + ("something_new",))
    for cold in (False, True):
        expected = ranker.score(rows, cold=cold)
        for same in (shuffled, extra, rows.matrix):
            assert np.array_equal(ranker.score(same, cold=cold), expected)


def test_save_and_load_give_the_same_scores(ranker, rows, tmp_path):
    """A learned ranker saved in a folder loads back with identical scores; a folder without one gives the
    heuristic."""
    if isinstance(ranker, LightGBMRanker):
        ranker.save(tmp_path / "rank")
        loaded = load_ranker(tmp_path / "rank")
        assert isinstance(loaded, LightGBMRanker)
    else:
        loaded = load_ranker(tmp_path / "never-trained")
        assert isinstance(loaded, HeuristicRanker)
    for cold in (False, True):
        assert np.array_equal(loaded.score(rows, cold=cold), ranker.score(rows, cold=cold))


def test_rankers_learn_something(rankers, catalogue):  # noqa: F811
    """Not a contract, a sanity check that the trained rankers above are not constant: board-mates outscore
    strangers on the catalogue they were trained on."""
    x, y = catalogue_problem(catalogue)
    for name in RANKERS:
        scores = rankers[name].score(x)
        assert scores[y > 0].mean() > scores[y == 0].mean(), name
