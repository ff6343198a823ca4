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


@pytest.mark.parametrize("hnsw", [False, True])
def test_filters_and_exclusions(hnsw):
    index, raw, ids = build(n=800, hnsw=hnsw)
    q = clustered(1, seed=5)
    allowed = ids[::7]
    for binary in (False, True):
        hits = search(index, q[0], 10, allowed=allowed, binary=binary)
        assert set(hits.ids) <= set(allowed) and len(hits.ids) == 10
        if not binary:  # small filtered subsets are searched exactly
            assert np.array_equal(hits.ids, brute(index, raw[::7], allowed, q, 10))
    top = search(index, q[0], 3).ids
    again = search(index, q[0], 3, excluded=top[:1]).ids
    assert top[0] not in again and again[0] == top[1]


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
