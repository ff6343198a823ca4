"""The vector index against brute force: exact and HNSW float search, binary search with re-ranking, filters,
incremental add/remove with tombstones, and atomic, checksummed persistence."""

from __future__ import annotations

import numpy as np
import pytest

from viscover import Settings
from viscover.index import Codec, IndexCorruptError, VectorIndex

DIM = 64


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(4, n // 20), DIM)).astype(np.float32)
    return centres[rng.integers(0, len(centres), n)] + 0.3 * rng.normal(size=(n, DIM)).astype(np.float32)


def brute(index: VectorIndex, raw_db: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    sims = index.codec.floats(raw_db) @ index.codec.floats(query)[0]
    return ids[np.argsort(-sims, kind="stable")[:k]]


def build(n=500, hnsw=False, seed=0, **settings):
    raw = clustered(n, seed)
    ids = np.arange(1000, 1000 + n, dtype=np.int64)
    s = Settings(hnsw_threshold=0 if hnsw else 10**9, **settings)
    return VectorIndex.build(ids, ids // 2, raw, s, model="test"), raw, ids


def search(index, raw_query, k, **kw):
    return index.search(index.codec.floats(raw_query), index.codec.bits(raw_query), k, **kw)


def test_exact_search_equals_brute_force():
    index, raw, ids = build()
    for q in clustered(20, seed=9):
        hits = search(index, q, 10)
        assert np.array_equal(hits.ids, brute(index, raw, ids, q[None], 10))
        assert np.all(np.diff(hits.scores) <= 1e-6)


def test_hnsw_recall_against_brute_force():
    index, raw, ids = build(n=3000, hnsw=True)  # default efSearch
    assert index.describe()["float"] == "hnsw"
    queries = clustered(50, seed=7)
    recall = np.mean([len(set(search(index, q, 10).ids) & set(brute(index, raw, ids, q[None], 10))) / 10
                      for q in queries])
    assert recall >= 0.95


def test_binary_search_reranks_by_float():
    index, raw, ids = build()
    q = clustered(1, seed=3)
    hits = search(index, q[0], 10, binary=True)
    # scores are cosine similarities, sorted; the shortlist came from Hamming distance
    sims = index.codec.floats(raw) @ index.codec.floats(q)[0]
    assert np.allclose(hits.scores, sims[np.searchsorted(ids, hits.ids)], atol=1e-5)
    assert np.all(np.diff(hits.scores) <= 1e-6)
    overlap = len(set(hits.ids) & set(brute(index, raw, ids, q, 10))) / 10
    assert overlap >= 0.8


def test_codec_bits_are_signs_of_centred_vectors():
    raw = clustered(100)
    codec = Codec.fit(raw)
    bits = np.unpackbits(codec.bits(raw), axis=1)[:, :DIM]
    assert np.array_equal(bits == 1, raw - raw.mean(0) > 0)
    assert 0.3 < bits.mean() < 0.7  # centring balances the bits
    index = VectorIndex.build(np.arange(100), np.arange(100), raw, Settings(), codec=codec)
    assert np.array_equal(index.stored_bits(np.arange(100)), codec.bits(raw))  # same bits as indexed
    assert np.allclose(np.linalg.norm(codec.floats(raw), axis=1), 1)


def brute_binary(index: VectorIndex, raw_db: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Binary search by hand: the k x binary_rerank nearest codes by Hamming distance, re-ranked by cosine."""
    codes, q = np.unpackbits(index.codec.bits(raw_db), axis=1), np.unpackbits(index.codec.bits(query), axis=1)
    short = np.argsort((codes != q).sum(axis=1), kind="stable")[: k * index.settings.binary_rerank]
    sims = index.codec.floats(raw_db[short]) @ index.codec.floats(query)[0]
    return ids[short[np.argsort(-sims, kind="stable")[:k]]]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return len(set(a.tolist()) & set(b.tolist())) / max(1, len(b))


@pytest.mark.parametrize("hnsw", [False, True])
@pytest.mark.parametrize("path", ["subset", "selector"])
def test_filters_and_exclusions(hnsw, path):
    """Small filters score the allowed subset exactly; larger ones (forced here by filter_exact_max=0) go through
    a FAISS ID selector inside the index search, exact or HNSW."""
    limit = {"subset": 10**9, "selector": 0}[path]
    index, raw, ids = build(n=800, hnsw=hnsw, filter_exact_max=limit)
    sub = np.arange(0, 800, 7)
    allowed = ids[sub]
    for q in clustered(5, seed=5):
        expected = brute(index, raw[sub], allowed, q[None], 10)
        hits = search(index, q, 10, allowed=allowed)
        assert set(hits.ids) <= set(allowed) and len(hits.ids) == 10
        if hnsw and path == "selector":  # a filtered graph walk: approximate
            assert overlap(hits.ids, expected) >= 0.9
        else:
            assert np.array_equal(hits.ids, expected)
        bits = search(index, q, 10, allowed=allowed, binary=True)
        assert set(bits.ids) <= set(allowed) and len(bits.ids) == 10
        assert overlap(bits.ids, brute_binary(index, raw[sub], allowed, q[None], 10)) >= 0.9
        # a filter and an exclusion together
        kept = search(index, q, 10, allowed=allowed, excluded=expected[:2])
        assert set(kept.ids) <= set(allowed) - set(expected[:2].tolist())
        assert kept.ids[0] == expected[2]
    top = search(index, clustered(1, seed=5)[0], 3).ids
    again = search(index, clustered(1, seed=5)[0], 3, excluded=top[:1]).ids
    assert top[0] not in again and again[0] == top[1]


def test_binary_hnsw_against_exact_binary_search():
    """Above binary_hnsw_threshold (2M by default; 0 here) the codes live in a binary HNSW graph: its results match
    exact Hamming search with float re-ranking, and removed items are tombstoned, never returned."""
    index, raw, ids = build(n=2000, binary_hnsw_threshold=0)
    assert index.describe()["binary"] == "hnsw" and index.describe()["float"] == "exact"
    queries = clustered(30, seed=8)
    recall = np.mean([overlap(search(index, q, 10, binary=True).ids, brute_binary(index, raw, ids, q[None], 10))
                      for q in queries])
    assert recall >= 0.95
    gone = brute_binary(index, raw, ids, queries[:1], 5)
    index.remove(gone)
    assert np.array_equal(np.sort(index.tombstones), np.sort(gone)) and len(index) == 2000 - 5
    after = search(index, queries[0], 10, binary=True).ids
    assert len(after) == 10 and not set(after.tolist()) & set(gone.tolist())
    assert index.needs_rebuild(removing=0) is False and index.blocks_add(gone[:1])


@pytest.mark.parametrize("hnsw", [False, True])
def test_add_and_remove_without_rebuild(hnsw):
    index, raw, ids = build(n=400, hnsw=hnsw)
    extra = clustered(50, seed=11)
    new_ids = np.arange(5000, 5050, dtype=np.int64)
    index.add(new_ids, new_ids, extra)
    assert search(index, extra[7], 1).ids[0] == 5007
    index.remove(np.array([5007, 1000, 99999]))
    assert len(index) == 400 + 50 - 2
    found = search(index, extra[7], 20).ids
    assert 5007 not in found and 1000 not in search(index, raw[0], 20).ids
    if hnsw:  # graphs cannot delete: tombstones, and re-adding a tombstoned id needs a rebuild
        assert index.blocks_add(np.array([5007])) and len(index.tombstones) == 2
    with pytest.raises(ValueError):
        index.add(new_ids[:1], new_ids[:1], extra[:1])  # already live


def test_needs_rebuild_when_many_tombstones():
    index, raw, ids = build(n=100, hnsw=True, compact_ratio=0.2)
    index.remove(ids[:10])
    assert not index.needs_rebuild()
    index.remove(ids[10:30])
    assert index.needs_rebuild()


def test_save_load_round_trip(tmp_path):
    index, raw, ids = build(n=300, hnsw=True)
    index.remove(ids[:5])
    index.save(tmp_path)
    index.save(tmp_path)  # a second generation replaces the first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays-2.npz", "binary-2.faiss", "float-2.faiss",
                                                          "manifest.json"]
    loaded = VectorIndex.load(tmp_path, index.settings)
    q = clustered(3, seed=4)
    for qq in q:
        for binary in (False, True):
            a, b = search(index, qq, 10, binary=binary), search(loaded, qq, 10, binary=binary)
            assert np.array_equal(a.ids, b.ids) and np.allclose(a.scores, b.scores)
    assert np.array_equal(loaded.tombstones, index.tombstones) and len(loaded) == 295
    assert VectorIndex.load(tmp_path / "nothing", index.settings) is None


def test_corrupt_index_is_detected(tmp_path):
    index, _, _ = build(n=100)
    index.save(tmp_path)
    target = next(tmp_path.glob("float-*.faiss"))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="checksum"):
        VectorIndex.load(tmp_path, index.settings)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorruptError):
        VectorIndex.load(tmp_path, index.settings)
