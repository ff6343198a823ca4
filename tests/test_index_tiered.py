"""The compressed index kinds (IVF-PQ, binary codes in RAM re-ranked by exact floats) and their delta tier and
tombstones, checked against exact search on seeded clustered vectors: recall@10 per kind, a randomized sequence of
adds, removes, merges, saves and loads against a model of the live items (nothing lost, nothing resurrected), and
searches while a merge runs (they use the old state and stay complete; writes made meanwhile survive the swap)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from viscover import Settings
from viscover.index import build_index, load_index
from viscover.index.plan import ivfpq_params

K = 10
RECALL_BOUND = 0.9  # mean recall@10 against exact search, 20,000 x 64-d clustered, 50 queries


def clustered(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(4, n // 20), dim)).astype(np.float32)
    return centres[rng.integers(0, len(centres), n)] + 0.3 * rng.normal(size=(n, dim)).astype(np.float32)


def unit(x: np.ndarray, centre: np.ndarray) -> np.ndarray:
    c = np.atleast_2d(x).astype(np.float32) - centre
    return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)


def exact_top(ids: np.ndarray, raw: np.ndarray, query: np.ndarray, centre: np.ndarray, k: int = K) -> np.ndarray:
    cos = unit(raw, centre) @ unit(query, centre)[0]
    return ids[np.argsort(-cos, kind="stable")[:k]]


@pytest.fixture(scope="module")
def vectors():
    raw = clustered(20_050)
    return np.arange(20_000, dtype=np.int64) * 3 + 7, raw[:20_000], raw[20_000:]


@pytest.mark.parametrize("settings, kind", [
    (dict(index_kind="ivfpq"), "ivfpq"),
    (dict(index_kind="binary"), "binary"),
    (dict(memory_budget="2MB"), "ivfpq"),  # 20,000 x 64-d: exact ~7.5 MB, IVF-PQ ~1.3 MB, binary ~1 MB
    (dict(memory_budget="1.1MB"), "binary"),
])
def test_each_kind_against_exact_search(vectors, tmp_path, settings, kind):
    ids, raw, queries = vectors
    s = Settings(**settings)
    index = build_index(ids, ids // 2, raw, s, model="m")
    assert index.describe()["float"] == kind
    index.save(tmp_path)
    loaded = load_index(tmp_path, s)
    centre = raw.mean(axis=0)
    recalls = []
    for q in queries:
        best = set(exact_top(ids, raw, q, centre).tolist())
        hits = index.search(index.encode(q), K)
        again = loaded.search(loaded.encode(q), K)
        assert np.array_equal(hits.ids, again.ids)
        cos = unit(raw[np.searchsorted(ids, hits.ids)], centre) @ unit(q, centre)[0]
        assert np.allclose(hits.scores, cos, atol=1e-5)  # re-ranked by exact floats: true cosines
        recalls.append(len(best & set(hits.ids.tolist())) / K)
    assert np.mean(recalls) >= RECALL_BOUND, np.mean(recalls)


def live_set(index) -> set[int]:
    return set(index.item_ids.tolist())


def check_against_model(index, model: dict[int, np.ndarray], centre: np.ndarray, rng) -> None:
    """The index holds exactly the model's live ids, returns only those (all of them when asked for all), each
    with its latest vector (never a removed one), and top-10s close to exact search."""
    ids = np.array(sorted(model), np.int64)
    assert np.array_equal(index.item_ids, ids) and len(index) == len(ids)
    assert index.contains(ids).all()
    raw = np.stack([model[i] for i in ids.tolist()])
    assert np.allclose(index.stored_floats(ids), unit(raw, centre), atol=1e-5)  # the latest vector of each id
    q = raw[rng.integers(len(raw))] + 0.1
    for binary in (False, True):
        everything = index.search(index.encode(q), len(ids) + 3, binary=binary)
        assert sorted(everything.ids.tolist()) == ids.tolist(), binary  # nothing lost, nothing resurrected
    hits = index.search(index.encode(q), K)
    assert set(hits.ids.tolist()) <= set(ids.tolist())
    best = set(exact_top(ids, raw, q, centre).tolist())
    assert len(best & set(hits.ids.tolist())) >= 7


@pytest.mark.parametrize("kind", ["ivfpq", "binary"])
@pytest.mark.parametrize("drop_after", [0, 10**9])  # dead ids: always a FAISS selector / always dropped after
def test_random_adds_removes_merges_saves_against_a_model(kind, drop_after, tmp_path, monkeypatch):
    from viscover.index import tiered

    monkeypatch.setattr(tiered, "DROP_AFTER", drop_after)
    rng = np.random.default_rng(42)
    pool = clustered(6000, seed=3)
    settings = Settings(index_kind=kind, delta_max=300, compact_ratio=0.1)
    first = np.arange(3000, dtype=np.int64)
    index = build_index(first, first, pool[:3000], settings, model="m")
    centre = pool[:3000].mean(axis=0)  # the codec's centre, fixed at build
    model = {int(i): pool[i] for i in first}
    removed: list[int] = []
    fresh = iter(range(3000, 6000))
    merges = saves = 0
    for _ in range(40):
        action = rng.choice(["add", "readd", "remove", "merge", "save"], p=[0.3, 0.15, 0.3, 0.1, 0.15])
        if action == "add":
            new = np.array([next(fresh) for _ in range(int(rng.integers(1, 120)))], np.int64)
            index.add(new, new, pool[new])
            model.update({int(i): pool[i] for i in new})
        elif action == "readd" and removed:  # an id comes back with another vector
            back = np.array(sorted(set(rng.choice(removed, size=min(len(removed), 20)).tolist())), np.int64)
            vec = pool[(back * 7) % 6000] + 0.05
            index.add(back, back, vec)
            model.update({int(i): v for i, v in zip(back, vec)})
            removed = [r for r in removed if r not in set(back.tolist())]
        elif action == "remove":
            live = np.array(sorted(model), np.int64)
            gone = rng.choice(live, size=int(rng.integers(1, 150)), replace=False)
            assert index.remove(np.concatenate([gone, [10**9]])) == len(gone)
            for i in gone.tolist():
                del model[i]
            removed += gone.tolist()
        elif action == "merge" or index.merge_due():
            index.merge()
            merges += 1
            assert index.delta_size == 0 and len(index.tombstones) == 0
        else:
            index.save(tmp_path)
            index = load_index(tmp_path, settings)
            saves += 1
        check_against_model(index, model, centre, rng)
    assert merges >= 2 and saves >= 2


@pytest.mark.parametrize("kind", ["ivfpq", "binary"])
def test_searches_while_a_merge_runs_are_complete_and_writes_meanwhile_survive(kind, tmp_path):
    pool = clustered(5000, seed=5)
    settings = Settings(index_kind=kind)
    base = np.arange(4000, dtype=np.int64)
    index = build_index(base, base, pool[:4000], settings, model="m")
    centre = pool[:4000].mean(axis=0)
    model = {int(i): pool[i] for i in base}
    index.add(np.arange(4000, 4400), np.arange(4000, 4400), pool[4000:4400])  # the delta
    model.update({i: pool[i] for i in range(4000, 4400)})
    for gone in (list(range(0, 400, 2)) + [4001, 4003]):  # tombstones in main, rows out of the delta
        index.remove(np.array([gone]))
        del model[gone]
    built, release = threading.Event(), threading.Event()

    def hold():  # between the new main's build and its swap
        built.set()
        assert release.wait(60)

    merge = index.merge_in_background(before_swap=hold)
    assert built.wait(120)
    rng = np.random.default_rng(0)
    for _ in range(3):  # the old state answers, complete, while the merge holds
        check_against_model(index, model, centre, rng)
    assert index.delta_size == 398
    # writes during the merge: a new item, a removed delta item, a removed main item, a re-added tombstone
    index.add(np.array([4500]), np.array([4500]), pool[4500:4501])
    index.remove(np.array([4005, 1]))
    index.add(np.array([0]), np.array([0]), pool[4600:4601])
    model.update({4500: pool[4500], 0: pool[4600]})
    del model[4005], model[1]
    release.set()
    merge.join(120)
    assert not merge.is_alive()
    assert index.delta_size == 2  # 4500 and 0, added after the merge started
    assert sorted(index.tombstones.tolist()) == [1, 4005]  # in the new main but dead; 0 was dropped from it
    check_against_model(index, model, centre, rng)
    index.save(tmp_path)
    check_against_model(load_index(tmp_path, settings), model, centre, rng)


@pytest.mark.parametrize("kind", ["ivfpq", "binary"])
def test_a_rebuild_streamed_in_batches_leaves_no_delta(vectors, kind):
    """`index --rebuild` streams stored embeddings in batches (build_index_batches): a tiered index took every
    batch after the first into its exact delta (a million items searched by brute force); they are merged in."""
    from viscover.index.registry import build_index_batches

    ids, raw, queries = vectors
    s = Settings(index_kind=kind)

    def batches():
        for start in range(0, len(ids), 4_000):
            yield ids[start:start + 4_000], ids[start:start + 4_000] // 2, raw[start:start + 4_000]

    index = build_index_batches(len(ids), raw.shape[1], batches, s, model="m")
    described = index.describe()
    assert (described["float"], described["items"], described["delta"]) == (kind, len(ids), 0)
    centre = raw.mean(axis=0)
    recalls = [len(set(exact_top(ids, raw, q, centre).tolist()) & set(index.search(index.encode(q), K).ids.tolist()))
               / K for q in queries]
    assert np.mean(recalls) >= RECALL_BOUND, np.mean(recalls)
    if kind == "ivfpq":  # trained for the whole catalogue, not for its first batch (as one build would be)
        whole = build_index(ids, ids // 2, raw, s, model="m")
        assert _nlist(index) == _nlist(whole) == ivfpq_params(len(ids), raw.shape[1], s)["nlist"]
        assert _nlist(index) > ivfpq_params(4_000, raw.shape[1], s)["nlist"]


def _nlist(index) -> int:
    import faiss

    return faiss.extract_index_ivf(index._state.main).nlist


def test_an_ivfpq_index_grown_fourfold_is_trained_again_at_its_next_merge(vectors):
    """Lists sized for the catalogue the index was trained on: merges reuse the trained IVF-PQ while the plan's
    list count stays within 2x of it, and train a new one once the catalogue outgrew it (recall kept)."""
    ids, raw, queries = vectors
    s = Settings(index_kind="ivfpq", delta_max=10**9)
    index = build_index(ids[:2_000], ids[:2_000] // 2, raw[:2_000], s, model="m")
    small = _nlist(index)
    index.add(ids[2_000:3_000], ids[2_000:3_000] // 2, raw[2_000:3_000])
    index.merge()
    assert _nlist(index) == small  # 1.5x the items: the same lists
    index.add(ids[3_000:], ids[3_000:] // 2, raw[3_000:])
    index.merge()
    assert _nlist(index) == ivfpq_params(len(ids), raw.shape[1], s)["nlist"] > 2 * small
    recalls = [len(set(exact_top(ids, raw, q, index.codec.center).tolist())  # centred as the first build was
                   & set(index.search(index.encode(q), K).ids.tolist())) / K for q in queries]
    assert np.mean(recalls) >= RECALL_BOUND, np.mean(recalls)
