"""The contract of `viscover.index.VectorIndex`, run on every registered backend and every kind of index it
chooses between (its `IndexBackend.kinds`: for FAISS exact, exact with ID-selector filters, HNSW, binary HNSW and
all graphs), on real embeddings (the shared indexed home) and on clustered synthetic vectors (2,000: enough for
HNSW to be approximate). Everything is checked against numpy brute force on the raw vectors, centred and
normalised here, not by the index: exact kinds return the brute-force top k (ties aside), approximate kinds keep a
recall@10 floor. A new backend is tested by registering it; nothing here names FAISS."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from conftest import needs_data
from viscover import Settings
from viscover.errors import NotFoundError
from viscover.index import IndexKind, Query, backend_names, build_index, get_backend, load_index, saved_version

K = 10
RECALL_FLOOR = 0.9  # approximate kinds, mean recall@10 against brute force
CASES = [pytest.param((name, kind), id=f"{name}-{kind.name}")
         for name in backend_names() for kind in get_backend(Settings(), name).kinds]


@dataclass
class Data:
    """Items (ids, their image ids, raw model vectors) and raw query vectors that are not items."""

    name: str
    item_ids: np.ndarray
    image_ids: np.ndarray
    raw: np.ndarray
    queries: np.ndarray


def clustered(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(4, n // 20), dim)).astype(np.float32)
    return centres[rng.integers(0, len(centres), n)] + 0.3 * rng.normal(size=(n, dim)).astype(np.float32)


def real_data(home) -> Data:
    """The stored embeddings of the shared indexed home (real photos through EfficientNet-Lite0); queries are
    midpoints of pairs of them (near the catalogue, yet no item)."""
    from viscover import Engine
    from viscover.embed.vectors import EmbeddingStore

    with Engine(home, Settings(workers=1)) as engine:
        item_ids, image_ids = engine.store.item_images()
        ids, raw = EmbeddingStore(engine.home.embeddings(engine.embedder().key)).load(np.unique(image_ids))
    keep = np.isin(image_ids, ids)
    item_ids, image_ids = item_ids[keep], image_ids[keep]
    raw = raw[np.searchsorted(ids, image_ids)]
    pairs = np.random.default_rng(1).choice(len(raw), size=(30, 2))
    return Data("real", item_ids, image_ids, raw, (raw[pairs[:, 0]] + raw[pairs[:, 1]]) / 2)


@pytest.fixture(scope="module", params=["clustered", pytest.param("real", marks=needs_data)])
def data(request) -> Data:
    if request.param == "real":
        return real_data(request.getfixturevalue("indexed_home"))
    vectors = clustered(2030)
    ids = np.arange(1000, 3000, dtype=np.int64)
    return Data("clustered", ids, ids // 2, vectors[:2000], vectors[2000:])


@pytest.fixture(scope="module", params=CASES)
def case(request) -> tuple[str, IndexKind]:
    return request.param


def settings_of(kind: IndexKind, **more) -> Settings:
    return Settings().replace(**{**kind.settings, **more})


def make(case, data: Data, rows=slice(None), **settings):
    """A fresh index of this backend and kind over some of the items."""
    name, kind = case
    return build_index(data.item_ids[rows], data.image_ids[rows], data.raw[rows], settings_of(kind, **settings),
                       model="contract", backend=name)


@pytest.fixture(scope="module")
def index(case, data):
    """One index over every item, shared by the tests that only read it."""
    return make(case, data)


# ---- brute force ------------------------------------------------------------------------------------------------
def unit(x: np.ndarray, centre: np.ndarray) -> np.ndarray:
    c = np.atleast_2d(x).astype(np.float32) - centre
    return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)


def brute(data: Data, query_raw: np.ndarray, rows=slice(None)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, cosine to the query, Hamming distance to the query) of the items in `rows`, centred on the mean of
    the vectors the index was built from (all items)."""
    centre = data.raw.mean(axis=0)
    db, q = data.raw[rows] - centre, np.atleast_2d(query_raw) - centre
    cos = unit(data.raw[rows], centre) @ unit(query_raw, centre)[0]
    hamming = ((db > 0) != (q > 0)).sum(axis=1)
    return data.item_ids[rows], cos, hamming


def check_exact(hits, ids: np.ndarray, cos: np.ndarray, k: int, tol: float = 1e-5) -> None:
    """The brute-force top k (ties at the boundary may go either way), scored by their cosine, best first."""
    n = min(k, len(ids))
    assert len(hits.ids) == len(hits.scores) == n
    check_scores(hits, ids, cos)
    if n == 0:
        return
    kth = np.sort(cos)[::-1][n - 1]
    assert set(ids[cos > kth + tol].tolist()) <= set(hits.ids.tolist())
    assert np.all(cos[np.searchsorted(ids, hits.ids)] >= kth - tol)


def check_scores(hits, ids: np.ndarray, cos: np.ndarray) -> None:
    """Results are distinct items, scored by their true cosine similarity, best first."""
    assert hits.ids.dtype == np.int64 and hits.scores.dtype == np.float32
    assert len(set(hits.ids.tolist())) == len(hits.ids) and set(hits.ids.tolist()) <= set(ids.tolist())
    assert np.allclose(hits.scores, cos[np.searchsorted(ids, hits.ids)], atol=1e-5)
    assert np.all(np.diff(hits.scores) <= 1e-6)


def recall(hits, ids: np.ndarray, cos: np.ndarray, k: int) -> float:
    best = ids[np.argsort(-cos, kind="stable")[:k]]
    return len(set(hits.ids.tolist()) & set(best.tolist())) / max(1, len(best))


def check_binary(hits, ids, cos, hamming, k: int, shortlist: int, tol: float = 1e-5) -> None:
    """The k best by cosine among the `shortlist` Hamming-nearest codes (codes tied at the boundary may be in the
    short list or not)."""
    n = min(k, len(ids))
    assert len(hits.ids) == n
    check_scores(hits, ids, cos)
    bound = np.sort(hamming)[min(shortlist, len(ids)) - 1]
    pos = np.searchsorted(ids, hits.ids)
    assert np.all(hamming[pos] <= bound)  # every result came from the short list
    inside = ids[(hamming < bound) & (cos > hits.scores[-1] + tol)]  # surely listed, and better than the last
    assert set(inside.tolist()) <= set(hits.ids.tolist())


# ---- the contract -------------------------------------------------------------------------------------------------
def test_describes_itself(index, data):
    assert len(index) == len(data.item_ids) and index.dim == data.raw.shape[1] and index.model == "contract"
    assert np.array_equal(index.item_ids, np.sort(data.item_ids)) and index.item_ids.dtype == np.int64
    about = index.describe()
    assert (about["model"], about["items"], about["dim"]) == ("contract", len(data.item_ids), data.raw.shape[1])
    assert {"float", "binary"} <= set(about)


def test_encode_centres_normalises_and_binarises(index, data):
    """encode(raw) is what the index compares: unit vectors of raw minus the catalogue mean, and their sign bits;
    the stored vectors of items are exactly their encoded raw vectors."""
    centre = data.raw.mean(axis=0)
    query = index.encode(data.queries)
    assert len(query) == len(data.queries) and query.floats.dtype == np.float32
    assert np.allclose(query.floats, unit(data.queries, centre), atol=1e-5)
    assert np.array_equal(np.unpackbits(query.bits, axis=1)[:, :index.dim], (data.queries - centre > 0))
    rows = np.random.default_rng(2).permutation(len(data.item_ids))[:20]  # any order, as asked
    stored = index.stored_query(data.item_ids[rows])
    encoded = index.encode(data.raw[rows])
    assert np.allclose(stored.floats, encoded.floats, atol=1e-5) and np.array_equal(stored.bits, encoded.bits)
    assert np.allclose(index.stored_floats(data.item_ids[rows]), encoded.floats, atol=1e-5)


def test_float_search_against_brute_force(index, data, case):
    _, kind = case
    recalls = []
    for q in data.queries:
        hits = index.search(index.encode(q), K)
        ids, cos, _ = brute(data, q)
        order = np.argsort(ids)
        ids, cos = ids[order], cos[order]
        if kind.exact:
            check_exact(hits, ids, cos, K)
        else:
            check_scores(hits, ids, cos)
            recalls.append(recall(hits, ids, cos, K))
    assert not recalls or np.mean(recalls) >= RECALL_FLOOR


@pytest.mark.parametrize("filtered", [False, True])
def test_binary_search_is_a_hamming_short_list_reranked_by_cosine(case, data, filtered):
    """With a short list of k x binary_rerank codes (2 here: fewer than the real catalogue's 59 items), over the
    whole index or within a filter."""
    _, kind = case
    index = make(case, data, binary_rerank=2)
    rows = np.sort(np.argsort(data.item_ids)[1::2]) if filtered else slice(None)
    recalls = []
    for q in data.queries:
        ids, cos, hamming = brute(data, q, rows)
        order = np.argsort(ids)
        ids, cos, hamming = ids[order], cos[order], hamming[order]
        hits = index.search(index.encode(q), K, binary=True, allowed=ids if filtered else None)
        if kind.exact_binary:
            check_binary(hits, ids, cos, hamming, K, K * 2)
        else:
            check_scores(hits, ids, cos)
            short = np.argsort(hamming, kind="stable")[:K * 2]
            best = ids[short[np.argsort(-cos[short], kind="stable")[:K]]]
            recalls.append(len(set(hits.ids.tolist()) & set(best.tolist())) / K)
    assert not recalls or np.mean(recalls) >= RECALL_FLOOR


def test_filters_and_exclusions(index, data, case):
    """`allowed` limits results to those ids (ids not in the index are ignored), `excluded` removes ids; both at
    once, for float and binary search."""
    _, kind = case
    rows = np.sort(np.argsort(data.item_ids)[::3])
    allowed = np.sort(np.concatenate([data.item_ids[rows], [10**9]]))  # one id the index does not hold
    recalls = []
    for q in data.queries[:10]:
        ids, cos, _ = brute(data, q, rows)
        order = np.argsort(ids)
        ids, cos = ids[order], cos[order]
        hits = index.search(index.encode(q), K, allowed=allowed)
        if kind.exact:
            check_exact(hits, ids, cos, K)
        else:
            check_scores(hits, ids, cos)
            recalls.append(recall(hits, ids, cos, K))
        top = ids[np.argsort(-cos, kind="stable")[:2]]
        for binary in (False, True):
            both = index.search(index.encode(q), K, binary=binary, allowed=allowed, excluded=top)
            assert set(both.ids.tolist()) <= set(ids.tolist()) - set(top.tolist()) and len(both.ids) == K
        unfiltered = index.search(index.encode(q), K, excluded=top).ids
        assert not set(unfiltered.tolist()) & set(top.tolist()) and len(unfiltered) == K
    assert not recalls or np.mean(recalls) >= RECALL_FLOOR
    for binary in (False, True):
        none = index.search(index.encode(data.queries[0]), K, binary=binary, allowed=np.zeros(0, np.int64))
        assert len(none.ids) == 0 and none.ids.dtype == np.int64 and none.scores.dtype == np.float32


def test_an_items_own_raw_vector_finds_it_first(index, data, case):
    """encode(the stored raw vector) -> the item itself (or an item with the very same vector), cosine 1."""
    _, kind = case
    sample = np.arange(0, len(data.item_ids), max(1, len(data.item_ids) // 40))
    for binary in (False, True):
        found = 0
        for i in sample:
            hits = index.search(index.encode(data.raw[i]), 1, binary=binary)
            same = data.item_ids[(data.raw == data.raw[i]).all(axis=1)]
            found += len(hits.ids) == 1 and hits.ids[0] in same and hits.scores[0] == pytest.approx(1, abs=1e-4)
        exact = kind.exact_binary if binary else kind.exact
        assert found == len(sample) if exact else found >= 0.95 * len(sample), (binary, found, len(sample))


def test_stored_queries_and_float_only_queries(index, data):
    """stored_query(item) searches like its raw vector; Query(floats=...) without bits serves float search (the
    related items' visual neighbours) and is refused for binary search; k beyond the index gives what is there."""
    ids = data.item_ids[:5]
    for i, item in enumerate(ids):
        stored = index.stored_query(np.array([item]))
        for binary in (False, True):
            a = index.search(stored, K, binary=binary)
            b = index.search(index.encode(data.raw[i]), K, binary=binary)
            assert np.array_equal(a.ids, b.ids) and np.allclose(a.scores, b.scores, atol=1e-5)
        floats_only = index.search(Query(floats=stored.floats[0]), K)
        assert np.array_equal(floats_only.ids, index.search(stored, K).ids)
        with pytest.raises(ValueError):
            index.search(Query(floats=stored.floats), K, binary=True)
    with pytest.raises(ValueError):
        index.search(index.encode(data.queries[:2]), K)  # one query at a time
    everything = index.search(index.encode(data.queries[0]), len(index) + 5)
    assert len(everything.ids) == len(index)
    assert len(index.search(index.encode(data.queries[0]), 0).ids) == 0
    with pytest.raises(NotFoundError) as e:
        index.stored_floats(np.array([10**9]))
    assert e.value.remedy.action == "index"


def test_add_remove_contains_image_of(case, data):
    half = len(data.item_ids) // 2
    index = make(case, data, slice(0, half))
    new = data.item_ids[half:]
    assert not index.contains(new).any() and index.contains(data.item_ids[:half]).all()
    index.add(new, data.image_ids[half:], data.raw[half:])
    assert len(index) == len(data.item_ids) and index.contains(data.item_ids).all()
    assert np.array_equal(index.image_of(data.item_ids), data.image_ids)
    assert index.contains(np.array([10**9, data.item_ids[0]])).tolist() == [False, True]
    last = len(data.item_ids) - 1
    assert index.search(index.encode(data.raw[last]), 1).ids.tolist() == [data.item_ids[last]]
    with pytest.raises(ValueError):
        index.add(data.item_ids[:1], data.image_ids[:1], data.raw[:1])  # already live
    gone = data.item_ids[::7]
    assert index.remove(np.concatenate([gone, [10**9]])) == len(gone)  # unknown ids are ignored
    assert index.remove(gone) == 0 and len(index) == len(data.item_ids) - len(gone)
    assert not index.contains(gone).any() and index.contains(np.setdiff1d(data.item_ids, gone)).all()
    for binary in (False, True):
        for q in data.queries[:5]:
            hits = index.search(index.encode(q), len(data.item_ids), binary=binary)
            assert not set(hits.ids.tolist()) & set(gone.tolist())
    with pytest.raises(NotFoundError):
        index.stored_floats(gone[:1])


def test_removed_items_stay_removed_and_come_back_only_as_announced(case, data, tmp_path):
    """Removed ids are never returned, also after a save and load (tombstones, where the kind keeps them). Adding
    one back works in place unless `rebuild_required` says otherwise, and then `add` refuses it."""
    name, kind = case
    index = make(case, data)
    gone = data.item_ids[: max(3, len(data.item_ids) // 20)]
    index.remove(gone)
    index.save(tmp_path)
    loaded = load_index(tmp_path, settings_of(kind), backend=name)
    for each in (index, loaded):
        assert not each.contains(gone).any()
        for binary in (False, True):
            hits = each.search(index.encode(data.raw[0]), len(data.item_ids), binary=binary)
            assert not set(hits.ids.tolist()) & set(gone.tolist()) and len(hits.ids) > 0
    n = len(gone)
    if loaded.rebuild_required(gone, np.zeros(0, np.int64)):
        with pytest.raises(ValueError):
            loaded.add(gone, data.image_ids[:n], data.raw[:n])
    else:
        loaded.add(gone, data.image_ids[:n], data.raw[:n])
        assert loaded.search(loaded.encode(data.raw[0]), 1).ids.tolist() == [gone[0]]
    assert not index.rebuild_required(np.zeros(0, np.int64), np.zeros(0, np.int64))


def test_save_and_load_give_identical_results(case, data, tmp_path):
    name, kind = case
    settings = settings_of(kind)
    assert load_index(tmp_path, settings, backend=name) is None
    assert saved_version(tmp_path, settings, backend=name) is None
    index = make(case, data)
    index.remove(data.item_ids[1:4])
    index.save(tmp_path)
    first = saved_version(tmp_path, settings, backend=name)
    loaded = load_index(tmp_path, settings, backend=name)
    assert first is not None and loaded.describe() == index.describe() and len(loaded) == len(index)
    assert np.array_equal(loaded.item_ids, index.item_ids)
    assert np.array_equal(loaded.image_of(loaded.item_ids), index.image_of(index.item_ids))
    allowed = np.sort(data.item_ids[::2])
    for q in data.queries[:5]:
        for kw in ({}, {"binary": True}, {"allowed": allowed}, {"excluded": data.item_ids[:10]}):
            a, b = index.search(index.encode(q), K, **kw), loaded.search(loaded.encode(q), K, **kw)
            assert np.array_equal(a.ids, b.ids) and np.allclose(a.scores, b.scores, atol=1e-6), kw
    loaded.save(tmp_path)
    assert saved_version(tmp_path, settings, backend=name) not in (None, first)  # a new save is noticed


def test_an_empty_index_grows(case, data):
    index = make(case, data, slice(0, 0))
    assert len(index) == 0 and index.dim == data.raw.shape[1]
    assert len(index.search(index.encode(data.queries[0]), K).ids) == 0
    assert not index.contains(data.item_ids[:3]).any()
    index.add(data.item_ids[:5], data.image_ids[:5], data.raw[:5])
    assert len(index) == 5 and index.search(index.encode(data.raw[2]), 1).ids.tolist() == [data.item_ids[2]]
