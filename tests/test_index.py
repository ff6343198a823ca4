"""The vector index against brute force: exact and HNSW float search, binary search with re-ranking, filters,
incremental add/remove with tombstones, and atomic, checksummed persistence."""

from __future__ import annotations

import os

import numpy as np
import pytest

from viscover import Settings
from viscover.errors import NotFoundError, Remedy
from viscover.index import Codec, FaissIndex, IndexCorruptError, Query

DIM = 64


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(4, n // 20), DIM)).astype(np.float32)
    return centres[rng.integers(0, len(centres), n)] + 0.3 * rng.normal(size=(n, DIM)).astype(np.float32)


def brute(index: FaissIndex, raw_db: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    sims = index.codec.floats(raw_db) @ index.codec.floats(query)[0]
    return ids[np.argsort(-sims, kind="stable")[:k]]


def build(n=500, hnsw=False, seed=0, **settings):
    raw = clustered(n, seed)
    ids = np.arange(1000, 1000 + n, dtype=np.int64)
    s = Settings(hnsw_threshold=0 if hnsw else 10**9, **settings)
    return FaissIndex.build(ids, ids // 2, raw, s, model="test"), raw, ids


def search(index, raw_query, k, **kw):
    return index.search(index.encode(raw_query), k, **kw)


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
    index = FaissIndex.build(np.arange(100), np.arange(100), raw, Settings(), codec=codec)
    assert np.array_equal(index.stored_bits(np.arange(100)), codec.bits(raw))  # same bits as indexed
    assert np.allclose(np.linalg.norm(codec.floats(raw), axis=1), 1)


def test_codec_by_hand():
    """Floats, signs and bits against their definitions, including the edge cases: a component exactly at the
    centre is a 0 bit and a -1 sign (strictly above the centre is 1), short and zero vectors, identity codecs."""
    raw = np.array([[3.0, 1.0, 2.0, 0.5], [1.0, 1.0, 0.0, 0.5], [2.0, 4.0, 1.0, 0.5]], np.float32)
    codec = Codec.fit(raw)
    assert codec.center.dtype == np.float32 and np.allclose(codec.center, [2.0, 2.0, 1.0, 0.5])
    centred = raw - codec.center  # column 3 is exactly at the centre for every row; row 0's column 0 is +1
    assert np.array_equal(codec.signs(raw), np.where(centred > 0, 1.0, -1.0))
    assert codec.signs(raw).dtype == np.float32 and set(np.unique(codec.signs(raw))) == {-1.0, 1.0}
    assert np.array_equal(np.unpackbits(codec.bits(raw), axis=1)[:, :4], (centred > 0).astype(np.uint8))
    signs = codec.signs(raw)
    bits = np.unpackbits(codec.bits(raw), axis=1)[:, :4]
    hamming = (bits[:, None] != bits[None, :]).sum(axis=2)
    assert np.array_equal(hamming, (4 - signs @ signs.T) / 2)  # the relation eval relies on
    floats = codec.floats(raw)
    assert floats.dtype == np.float32 and floats.flags.c_contiguous
    assert np.allclose(floats, centred / np.linalg.norm(centred, axis=1, keepdims=True))
    index = FaissIndex.build(np.arange(3), np.arange(3), raw, Settings(), codec=codec)
    assert np.array_equal(index.stored_bits(np.arange(3)), codec.bits(raw))  # also for components at the centre
    tiny = Codec.identity(4)
    assert tiny.center.dtype == np.float32 and tiny.dim == 4 and not tiny.center.any()
    short = np.array([[0.003, 0.004, 0.0, 0.0]], np.float32)  # norm 0.005: still scaled to unit length
    assert np.allclose(tiny.floats(short), [[0.6, 0.8, 0.0, 0.0]])
    assert np.array_equal(tiny.floats(np.zeros((1, 4))), np.zeros((1, 4)))  # no division by zero
    assert np.array_equal(tiny.signs(short[0]), [[1.0, 1.0, -1.0, -1.0]])  # one vector is one row


def test_exact_ties_are_broken_by_item_id():
    """Identical vectors (the same picture under several ids) score exactly alike: filtered searches, which score
    the subset themselves, list them by id, float and binary. (Unfiltered searches keep the order FAISS returns
    ties in; an index built by the engine adds items in id order.)"""
    base = clustered(40, seed=2)
    raw = np.concatenate([np.repeat(base[:1], 30, axis=0), base[1:]])  # 30 copies of one vector
    ids = np.random.default_rng(0).permutation(np.arange(500, 570))[: len(raw)].astype(np.int64)
    index = FaissIndex.build(ids, ids, raw, Settings(hnsw_threshold=10**9))
    copies = np.sort(ids[:30])
    for binary in (False, True):
        hits = search(index, raw[0], 25, allowed=np.sort(ids), binary=binary)  # filters come as sorted ids
        assert np.array_equal(hits.ids, copies[:25]), binary


def test_item_id_zero_and_small_indexes():
    """Id 0 is an ordinary id; k larger than the index, an empty index, an empty filter and excluding everything
    give what is there (or nothing), never an error or a padding id."""
    raw = clustered(6, seed=3)
    index = FaissIndex.build(np.arange(6), np.arange(6), raw, Settings(hnsw_threshold=10**9))
    for binary in (False, True):
        hits = search(index, raw[0], 20, binary=binary)
        assert hits.ids[0] == 0 and sorted(hits.ids) == list(range(6)) and len(hits.scores) == 6
        assert len(search(index, raw[0], 20, excluded=np.array([0, 1]), binary=binary).ids) == 4
        nothing = search(index, raw[0], 5, excluded=np.arange(6), binary=binary)
        assert nothing.ids.dtype == np.int64 and len(nothing.ids) == len(nothing.scores) == 0
        empty_filter = search(index, raw[0], 5, allowed=np.array([], np.int64), binary=binary)
        assert len(empty_filter.ids) == 0 and empty_filter.scores.dtype == np.float32
        only_zero = search(index, raw[3], 5, allowed=np.array([0, 99]), binary=binary)  # 99 is not in the index
        assert only_zero.ids.tolist() == [0]
        cosine = float(index.codec.floats(raw[3:4])[0] @ index.codec.floats(raw[0:1])[0])
        assert only_zero.scores[0] == pytest.approx(cosine, abs=1e-5)  # a lone candidate is scored too
        assert len(search(index, raw[3], 1, allowed=np.arange(6), binary=binary).ids) == 1
    empty = FaissIndex.build(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, DIM), np.float32),
                             Settings())
    assert len(empty) == 0 and empty.dim == DIM and len(search(empty, raw[0], 3).ids) == 0
    assert empty.contains(np.array([0, 1])).tolist() == [False, False]
    assert empty.contains(np.array([0, 1])).dtype == bool
    one = FaissIndex.build(np.array([7]), np.array([7]), raw[:1], Settings())
    assert one.contains(np.array([3, 7, 9])).tolist() == [False, True, False]


def test_id_arrays_stay_int64(tmp_path):
    """Item, image and tombstone ids are int64 whatever the caller passed (lists, int32): they are FAISS ids and
    are saved; floats would lose ids above 2^53 and change the saved files."""
    raw = clustered(30, seed=4)
    index = FaissIndex.build(list(range(10)), np.arange(10, dtype=np.int32), raw[:10], Settings(hnsw_threshold=0))
    index.add(list(range(10, 20)), list(range(10, 20)), raw[10:20].astype(np.float64))
    index.remove([0, 1])
    for array in (index.item_ids, index.image_ids, index.tombstones):
        assert array.dtype == np.int64
    index.save(tmp_path)
    loaded = FaissIndex.load(tmp_path, index.settings)
    for array in (loaded.item_ids, loaded.image_ids, loaded.tombstones):
        assert array.dtype == np.int64
    fresh = FaissIndex(Codec.identity(DIM), Settings())
    assert fresh.item_ids.dtype == fresh.image_ids.dtype == fresh.tombstones.dtype == np.int64
    assert fresh.describe() == {"model": "", "items": 0, "dim": DIM, "tombstones": 0, "float": "exact",
                                "binary": "exact"}  # exact indexes unless asked otherwise
    assert FaissIndex.build(np.arange(3), np.arange(3), raw[:3], Settings()).model == ""


def test_graphs_use_the_configured_degree():
    import faiss

    index, raw, ids = build(n=100, hnsw=True, binary_hnsw_threshold=0, hnsw_m=12, hnsw_ef_construction=40)
    graph = faiss.downcast_index(index.float_index.index)
    bits = faiss.downcast_IndexBinary(index.binary_index.index)
    assert isinstance(graph, faiss.IndexHNSWFlat) and isinstance(bits, faiss.IndexBinaryHNSW)
    assert graph.hnsw.nb_neighbors(1) == bits.hnsw.nb_neighbors(1) == 12 and graph.hnsw.efConstruction == 40


def test_binary_search_within_a_filter_uses_the_bits():
    """With a short list smaller than the filtered subset (binary_rerank=1), binary search of a filter returns the
    Hamming-nearest codes re-ranked by cosine, not the float search's results."""
    index, raw, ids = build(n=800, binary_rerank=1)
    sub = np.arange(0, 800, 3)
    differs = 0
    for q in clustered(8, seed=12):
        hits = search(index, q, 10, allowed=ids[sub], binary=True)
        expected = brute_binary(index, raw[sub], ids[sub], q[None], 10)
        assert overlap(hits.ids, expected) >= 0.9
        differs += not np.array_equal(hits.ids, brute(index, raw[sub], ids[sub], q[None], 10))
    assert differs  # the bits made a difference somewhere


def test_adding_live_or_tombstoned_ids_is_refused():
    index, raw, ids = build(n=100, hnsw=True)
    with pytest.raises(ValueError, match="^adding ids already in the index; remove them first, or rebuild if "
                                         "tombstoned$"):
        index.add(ids[:2], ids[:2], raw[:2])
    index.remove(ids[:1])
    with pytest.raises(ValueError, match="rebuild if tombstoned"):
        index.add(ids[:1], ids[:1], raw[:1])
    flat, raw, ids = build(n=100)
    flat.remove(ids[:1])
    flat.add(ids[:1], ids[:1], raw[:1])  # an exact index deleted it for real: it can come back
    assert flat.contains(ids[:1]).all() and len(flat.tombstones) == 0


def test_index_kinds_switch_just_above_their_thresholds():
    """HNSW is used above hnsw_threshold items (not at it), binary HNSW above binary_hnsw_threshold; needs_rebuild
    says so when a catalogue grows or shrinks across either threshold, and only then."""
    raw = clustered(40, seed=6)
    ids = np.arange(40, dtype=np.int64)
    at = FaissIndex.build(ids, ids, raw, Settings(hnsw_threshold=40, binary_hnsw_threshold=40))
    assert (at.hnsw, at.binary_hnsw) == (False, False)
    over = FaissIndex.build(ids, ids, raw, Settings(hnsw_threshold=39, binary_hnsw_threshold=10**9))
    assert (over.hnsw, over.binary_hnsw) == (True, False)
    over_bits = FaissIndex.build(ids, ids, raw, Settings(hnsw_threshold=10**9, binary_hnsw_threshold=39))
    assert (over_bits.hnsw, over_bits.binary_hnsw) == (False, True)
    assert not at.needs_rebuild() and not at.needs_rebuild(future_size=40) and at.needs_rebuild(future_size=41)
    assert not over.needs_rebuild() and not over.needs_rebuild(future_size=40) and over.needs_rebuild(future_size=39)
    assert not over_bits.needs_rebuild(future_size=45) and over_bits.needs_rebuild(future_size=39)
    assert over_bits.needs_rebuild(future_size=10**9 + 1)  # the float index would have to become a graph


def test_needs_rebuild_counts_tombstones_against_everything_in_the_graph():
    """The dead fraction is tombstones (plus ids about to be removed from a graph) over all ids in the graph,
    live and dead; a rebuild is needed only beyond compact_ratio, and exact indexes never accumulate any."""
    index, raw, ids = build(n=100, hnsw=True, compact_ratio=0.2)
    index.remove(ids[:20])  # 20 dead of 100 in the graph: exactly the ratio, not beyond it
    assert len(index) == 80 and not index.needs_rebuild()
    assert index.needs_rebuild(removing=1)  # 21 of 100
    bits_only, raw, ids = build(n=100, binary_hnsw_threshold=0, compact_ratio=0.2)
    assert not bits_only.needs_rebuild(removing=20) and bits_only.needs_rebuild(removing=21)
    flat, raw, ids = build(n=100, compact_ratio=0.2)
    assert not flat.needs_rebuild(removing=90)  # exact indexes delete in place: nothing to compact
    flat.remove(ids[:90])
    assert not flat.needs_rebuild() and len(flat.tombstones) == 0
    tiny, raw, ids = build(n=10, compact_ratio=0.05)
    assert not tiny.needs_rebuild(removing=1) and not tiny.needs_rebuild()  # not even one id counts as dead


def test_describe_and_saved_manifest(tmp_path):
    import json

    raw = clustered(60)
    ids = np.arange(1000, 1060, dtype=np.int64)
    index = FaissIndex.build(ids, ids, raw, Settings(hnsw_threshold=0), model="lite0")
    index.remove(ids[:3])
    assert index.describe() == {"model": "lite0", "items": 57, "dim": DIM, "tombstones": 3, "float": "hnsw",
                                "binary": "exact"}
    index.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert {k: manifest[k] for k in ("format", "generation", "model", "dim", "count", "tombstones", "float_kind",
                                     "binary_kind")} == {"format": "viscover-index/1", "generation": 1,
                                                         "model": "lite0", "dim": DIM, "count": 57, "tombstones": 3,
                                                         "float_kind": "hnsw", "binary_kind": "flat"}
    loaded = FaissIndex.load(tmp_path, index.settings)
    assert loaded.describe() == index.describe() and loaded.codec.center.dtype == np.float32
    with pytest.raises(NotFoundError, match=r"^item row\(s\) \[1000, 1001, 1002\] are not in the lite0 index$") as e:
        loaded.stored_floats(ids[:5])
    assert e.value.remedy == Remedy("index", model="lite0")


def test_save_removes_only_stale_files(tmp_path):
    """Old generations and temp files left by a killed save go; anything else in the folder stays."""
    index, raw, ids = build(n=50)
    index.save(tmp_path)
    (tmp_path / ".float-2.faiss.x1y2.tmp").write_bytes(b"half")  # a save killed midway
    (tmp_path / ".keep-me").write_text("someone else's")
    index.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".keep-me", "arrays-2.npz", "binary-2.faiss",
                                                          "float-2.faiss", "manifest.json"]


def test_loading_refuses_what_it_cannot_trust(tmp_path):
    """An unknown format, a pickled array (never unpickled, even with a matching checksum) and unreadable files
    are IndexCorruptError, naming the folder."""
    import json

    from viscover.fsutil import sha256_file

    index, raw, ids = build(n=20)
    index.save(tmp_path)
    manifest_path = tmp_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "format": "viscover-index/99"}))
    with pytest.raises(IndexCorruptError, match=f"{tmp_path}: unknown index format 'viscover-index/99'"):
        FaissIndex.load(tmp_path, index.settings)
    arrays = tmp_path / manifest["files"]["arrays"]["name"]
    with open(arrays, "wb") as f:  # the same arrays, one of them an object array: loading it would unpickle
        np.savez(f, item_ids=index.item_ids, image_ids=index.image_ids, center=index.codec.center,
                 tombstones=np.array([{"evil": 1}], dtype=object))
    manifest["files"]["arrays"]["sha256"] = sha256_file(arrays)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="unreadable index .*pickle"):
        FaissIndex.load(tmp_path, index.settings)
    manifest_path.write_text(json.dumps({**manifest, "files": {}}))
    with pytest.raises(IndexCorruptError, match="unreadable index \\(KeyError"):
        FaissIndex.load(tmp_path, index.settings)


def brute_binary(index: FaissIndex, raw_db: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
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
    loaded = FaissIndex.load(tmp_path, index.settings)
    q = clustered(3, seed=4)
    for qq in q:
        for binary in (False, True):
            a, b = search(index, qq, 10, binary=binary), search(loaded, qq, 10, binary=binary)
            assert np.array_equal(a.ids, b.ids) and np.allclose(a.scores, b.scores)
    assert np.array_equal(loaded.tombstones, index.tombstones) and len(loaded) == 295
    assert FaissIndex.load(tmp_path / "nothing", index.settings) is None


def test_corrupt_index_is_detected(tmp_path):
    index, _, _ = build(n=100)
    index.save(tmp_path)
    target = next(tmp_path.glob("float-*.faiss"))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="checksum"):
        FaissIndex.load(tmp_path, index.settings)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorruptError, match=f"^{tmp_path / 'manifest.json'}: unreadable manifest "):
        FaissIndex.load(tmp_path, index.settings)


def test_small_requests_and_empty_answers():
    """k=0 asks for nothing, on every search path; an empty answer has the same dtypes as a full one; a missing
    item list in an error names at most 5 of them; a flat index's manifest says so."""
    index, raw, ids = build(n=60, filter_exact_max=10)
    q = raw[:1]
    paths = [{}, {"binary": True}, {"allowed": ids[:5]}, {"allowed": ids[:30]}, {"excluded": ids[:3]},
             {"allowed": ids[:5], "binary": True}]
    for kw in paths:
        assert len(search(index, q, 0, **kw).ids) == 0, kw
        none = search(index, q, 5, **{**kw, "allowed": np.zeros(0, np.int64)})
        some = search(index, q, 5, **kw)
        for hits in (none, some):
            assert (hits.ids.dtype, hits.scores.dtype) == (np.int64, np.float32), kw
        assert len(none.ids) == len(none.scores) == 0 and len(some.ids) == len(some.scores) == 5, kw
    for kw in paths:  # a float64 query vector: the same answer, float32 scores
        wide = index.search(Query(index.codec.floats(q)[0].astype(np.float64), index.codec.bits(q)), 5, **kw)
        assert wide.scores.dtype == np.float32 and wide.ids.tolist() == search(index, q, 5, **kw).ids.tolist(), kw
    with pytest.raises(ValueError, match="^binary search needs the query's sign bits$"):
        index.search(Query(index.codec.floats(q)), 5, binary=True)
    assert search(index, q, 5).ids.tolist() == index.search(Query(index.codec.floats(q)), 5).ids.tolist()
    gone = search(index, q, 5, excluded=ids)  # everything excluded
    assert (len(gone.ids), gone.ids.dtype, gone.scores.dtype) == (0, np.int64, np.float32)
    with pytest.raises(NotFoundError, match=r"item row\(s\) \[1, 2, 3, 4, 5\] are not"):
        index.stored_floats(np.arange(1, 8))


def test_build_fits_the_centre_unless_given_one(tmp_path):
    """Without a codec, build centres on the mean of the vectors it is given; from no vectors at all, an
    identity codec of the right width that later additions can use."""
    import json

    raw = clustered(40)
    ids = np.arange(40, dtype=np.int64)
    index = FaissIndex.build(ids, ids, raw, Settings())
    assert np.allclose(index.codec.center, raw.mean(axis=0), atol=1e-6)
    empty = FaissIndex.build(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, DIM), np.float32),
                             Settings())
    assert empty.dim == DIM and not empty.codec.center.any() and len(empty) == 0
    empty.add(ids, ids, raw)
    hits = search(empty, raw[:1], 3)
    assert hits.ids[0] == 0 and np.isfinite(hits.scores).all()
    assert FaissIndex.build(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32),
                            Settings()).dim == 0
    index.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert (manifest["float_kind"], manifest["binary_kind"]) == ("flat", "flat")


def test_a_save_landing_during_a_load_is_read_instead(tmp_path, monkeypatch):
    """Readers take no lock: when a writer saves a new generation (and removes the old one's files) while a reader
    is verifying the old files, the reader loads the new generation instead of failing (found by the soak test:
    a search answered 503 "unreadable index" during writes)."""
    import viscover.index.faiss_index as module

    first, raw, ids = build(n=30)
    first.save(tmp_path)
    second, _, _ = build(n=40, seed=1)
    real = module.sha256_file
    saves = []

    def racing(path):  # the reader checks a file; meanwhile a writer saves (at most twice)
        if len(saves) < 2 and path.name.startswith(("float-", "binary-", "arrays-")):
            saves.append(path.name)
            monkeypatch.setattr(module, "sha256_file", real)
            second.save(tmp_path)
            monkeypatch.setattr(module, "sha256_file", racing)
        return real(path)

    monkeypatch.setattr(module, "sha256_file", racing)
    loaded = FaissIndex.load(tmp_path, first.settings)
    assert len(loaded) == 40 and len(saves) == 2  # two saves landed; the third generation was read
    monkeypatch.setattr(module, "sha256_file", real)
    target = next(tmp_path.glob("float-*.faiss"))
    target.write_bytes(target.read_bytes()[:-1] + b"x")  # damaged, with no save going on: still an error
    with pytest.raises(IndexCorruptError, match="checksum"):
        FaissIndex.load(tmp_path, first.settings)


def test_a_damaged_index_is_read_once_and_endless_saves_give_up_after_the_attempts(tmp_path, monkeypatch):
    """Real damage (the manifest still names the generation just read) fails at once, without retrying; a reader
    that finds a newer generation after every failure (saves landing again and again) stops after LOAD_ATTEMPTS
    reads and reports the damage it saw."""
    import viscover.index.faiss_index as module

    index, _, _ = build(n=30)
    index.save(tmp_path)
    target = next(tmp_path.glob("float-*.faiss"))
    target.write_bytes(target.read_bytes()[:-1] + b"x")
    reads = []
    real_load = module.FaissIndex._load_generation.__func__

    def counted(cls, folder, manifest, settings):
        reads.append(manifest["generation"])
        return real_load(cls, folder, manifest, settings)

    monkeypatch.setattr(module.FaissIndex, "_load_generation", classmethod(counted))
    with pytest.raises(IndexCorruptError, match="checksum mismatch"):
        FaissIndex.load(tmp_path, index.settings)
    assert reads == [1]
    real_manifest, generation = module._read_manifest, iter(range(100, 200))
    monkeypatch.setattr(module, "_read_manifest", lambda folder: {**real_manifest(folder),
                                                                  "generation": next(generation)})
    reads.clear()
    with pytest.raises(IndexCorruptError, match="checksum mismatch"):
        FaissIndex.load(tmp_path, index.settings)
    assert len(reads) == module.LOAD_ATTEMPTS == 5


def test_rebuild_required_combines_tombstoned_ids_kind_and_dead_fraction():
    """What `index` asks before updating in place: a tombstoned id among those to add, a size after the change
    that calls for another kind of index, or too many dead entries after removing (only live ids count)."""
    graph, raw, ids = build(n=100, hnsw=True, compact_ratio=0.2)
    none = np.zeros(0, np.int64)
    assert not graph.rebuild_required(none, none)
    graph.remove(ids[:5])
    assert graph.rebuild_required(ids[:1], none)  # tombstoned: cannot come back in place
    assert not graph.rebuild_required(np.array([7777]), ids[5:20])  # 20 dead of 100: exactly the ratio
    assert graph.rebuild_required(np.array([7777]), ids[5:21])
    assert not graph.rebuild_required(none, np.concatenate([ids[:5], [99999]]))  # not live: not counted again
    raw = clustered(40)
    ids = np.arange(40, dtype=np.int64)
    flat = FaissIndex.build(ids, ids, raw, Settings(hnsw_threshold=41))
    assert not flat.rebuild_required(np.array([5000]), none)  # 41 items: still exact
    assert flat.rebuild_required(np.array([5000, 5001]), none)  # 42 > 41: a graph now
    assert not flat.rebuild_required(np.array([5000, 5001]), ids[:1])  # one out, two in: 41
    assert not flat.rebuild_required(none, ids[:39])  # exact indexes delete in place


def test_codec_for_vectors():
    """One rule for the index, eval and anything else: identity for centred models, else the mean of the raw
    vectors; from no vectors, an identity of their width."""
    raw = clustered(30)
    assert np.allclose(Codec.for_vectors(raw).center, raw.mean(axis=0))
    assert not Codec.for_vectors(raw, centered=True).center.any() and Codec.for_vectors(raw, centered=True).dim == DIM
    empty = Codec.for_vectors(np.zeros((0, DIM), np.float32))
    assert empty.dim == DIM and not empty.center.any()
    assert Codec.for_vectors(np.zeros(0, np.float32)).dim == 0


def test_query_rows():
    """A Query holds 2-D float32 rows (and uint8 bits); one row of it is a Query again."""
    raw = clustered(3)
    index, _, _ = build(n=50)
    query = index.encode(raw)
    assert len(query) == 3 and query.floats.shape == (3, DIM) and query.bits.shape == (3, DIM // 8)
    last = query[-1]
    assert len(last) == 1 and np.array_equal(last.floats, query.floats[2:])
    assert np.array_equal(last.bits, query.bits[2:])
    assert query[0].bits.dtype == np.uint8 and query[1].floats.dtype == np.float32
    flat = Query(np.zeros(DIM, np.float64))
    assert flat.floats.shape == (1, DIM) and flat.floats.dtype == np.float32 and flat.bits is None
    assert flat[0].bits is None
    with pytest.raises(ValueError, match="one query at a time"):
        index.search(query, 3)


def test_backends_are_chosen_by_name(tmp_path):
    """build_index / load_index / saved_version go through the registry: FAISS by default, another backend by
    name once registered, and an unknown name is a settings error."""
    from viscover.errors import ConfigError
    from viscover.index import (DEFAULT_BACKEND, IndexBackend, backend_names, build_index, get_backend, load_index,
                                register_backend, saved_version)
    from viscover.index.registry import _BACKENDS

    raw = clustered(20)
    ids = np.arange(20, dtype=np.int64)
    assert DEFAULT_BACKEND == "faiss" and "faiss" in backend_names()
    index = build_index(ids, ids, raw, Settings(), model="m")
    assert isinstance(index, FaissIndex) and index.model == "m" and np.allclose(index.codec.center, raw.mean(0))
    assert not build_index(ids, ids, raw, Settings(), centered=True).codec.center.any()
    assert saved_version(tmp_path, Settings()) is None and load_index(tmp_path, Settings()) is None
    index.save(tmp_path)
    assert saved_version(tmp_path, Settings()) is not None and len(load_index(tmp_path, Settings())) == 20
    with pytest.raises(ConfigError, match="unknown index backend 'nope'; known: faiss"):
        build_index(ids, ids, raw, Settings(), backend="nope")
    with pytest.raises(ConfigError, match="unknown index backend 'milvus'; known: faiss"):
        load_index(tmp_path, Settings(index_backend="milvus"))
    calls = []
    faiss_backend = get_backend(Settings())
    fake = IndexBackend("fake", build=lambda *a: calls.append(a) or "built", load=lambda f, s: "loaded",
                        saved_version=lambda f: 42)
    register_backend(fake)
    try:
        assert build_index(ids, ids, raw, Settings(), model="m", backend="fake") == "built"
        assert calls[0][5] == "m" and isinstance(calls[0][4], Codec)
        assert load_index(tmp_path, Settings(), backend="fake") == "loaded"
        assert saved_version(tmp_path, Settings(), backend="fake") == 42
        assert get_backend(Settings(), "fake") is fake and get_backend(Settings()) is faiss_backend
        assert get_backend(Settings(index_backend="fake")) is fake  # the setting chooses when no name is given
        assert build_index(ids, ids, raw, Settings(index_backend="fake")) == "built"
    finally:
        _BACKENDS.pop("fake")


def test_index_cache_loads_once_and_notices_newer_saves(tmp_path):
    """The cache returns the same object until a save lands (this process's, swapped in by `keep`, or another
    process's, noticed by the manifest's version); a missing or damaged index names its remedy."""
    from viscover.index.cache import IndexCache
    from viscover.paths import Home

    home = Home(tmp_path)
    cache = IndexCache(home, Settings())
    with pytest.raises(NotFoundError, match="^no index for model lite0 yet$") as e:
        cache.get("key", "lite0", "lite0-as-typed")
    assert (e.value.remedy.action, e.value.remedy.model) == ("index", "lite0-as-typed")
    index, raw, ids = build(n=30)
    index.save(home.index("key"))
    first = cache.get("key", "lite0")
    assert cache.get("key", "lite0") is first and len(first) == 30
    other, _, _ = build(n=40, seed=1)
    other.save(home.index("key"))  # as another process would
    again = cache.get("key", "lite0")
    assert again is not first and len(again) == 40 and cache.get("key", "lite0") is again
    mine, _, _ = build(n=50, seed=2)
    mine.save(home.index("key"))
    cache.keep("key", mine)
    assert cache.get("key", "lite0") is mine
    target = next(home.index("key").glob("float-*.faiss"))
    target.write_bytes(target.read_bytes()[:-1] + b"x")
    os.utime(home.index("key") / "manifest.json", ns=(1, 1))  # as if a new (damaged) save had landed
    with pytest.raises(IndexCorruptError, match="checksum mismatch") as e:
        cache.get("key", "lite0", None)
    assert (e.value.remedy.action, e.value.remedy.model) == ("rebuild-index", None)
