"""Stored embeddings at scale: memory-mapped .npy shards, old .npz shards still read, streaming iteration and lookup,
and an index rebuild that streams the stored vectors instead of holding extra full copies."""

from __future__ import annotations

import shutil
import tracemalloc
from dataclasses import dataclass

import numpy as np
import pytest

from viscover.config import Settings
from viscover.embed.vectors import EmbeddingStore
from viscover.index import load_index
from viscover.index.registry import build_index
from viscover.index.sync import IndexReport, sync_index

from conftest import needs_data


def _random(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32) + 0.5


def _write_npz(folder, number: int, ids, vectors) -> None:
    """A shard as viscover wrote them before memory-mapped shards (an old home)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"shard-{number:06d}.npz", "wb") as f:
        np.savez(f, ids=np.asarray(ids, np.int64), vectors=np.asarray(vectors, np.float32))


def test_shards_are_memory_mappable_npy_files(tmp_path):
    store = EmbeddingStore(tmp_path / "e")
    vecs = _random(10, 8)
    store.append(np.arange(10), vecs)
    names = sorted(p.name for p in (tmp_path / "e").iterdir())
    assert names == ["shard-000001.f32.npy", "shard-000001.ids.npy"]
    mapped = np.load(tmp_path / "e" / "shard-000001.f32.npy", mmap_mode="r")
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, vecs)
    assert np.array_equal(np.load(tmp_path / "e" / "shard-000001.ids.npy"), np.arange(10))


def test_vectors_without_their_ids_file_are_not_a_shard(tmp_path):
    """The ids file is committed last: a crash between the two writes leaves an orphan that nothing reads, and
    the next shard does not reuse its number."""
    store = EmbeddingStore(tmp_path / "e")
    store.append(np.arange(3), _random(3, 4))
    np.save(tmp_path / "e" / "shard-000002.f32.npy", _random(5, 4))  # crashed before its ids file
    assert store.ids().tolist() == [0, 1, 2]
    store.append(np.array([7]), _random(1, 4, seed=3))
    assert (tmp_path / "e" / "shard-000003.ids.npy").is_file()
    assert store.ids().tolist() == [0, 1, 2, 7]


def test_old_npz_shards_are_still_read_and_later_shards_win(tmp_path):
    folder = tmp_path / "e"
    old = _random(6, 4)
    _write_npz(folder, 1, [5, 1, 3, 9, 7, 2], old)
    store = EmbeddingStore(folder)
    newer = _random(2, 4, seed=1)
    store.append(np.array([3, 11]), newer)  # id 3 replaced by a later shard
    assert (folder / "shard-000002.ids.npy").is_file()
    assert store.ids().tolist() == [1, 2, 3, 5, 7, 9, 11]
    ids, vecs = store.load()
    expect = {5: old[0], 1: old[1], 3: newer[0], 9: old[3], 7: old[4], 2: old[5], 11: newer[1]}
    assert ids.tolist() == sorted(expect)
    assert np.array_equal(vecs, np.stack([expect[i] for i in sorted(expect)]))
    got = store.vectors_of(np.array([11, 3, 3, 5]))
    assert np.array_equal(got, np.stack([expect[11], expect[3], expect[3], expect[5]]))


def test_compact_converts_old_shards_to_npy(tmp_path):
    folder = tmp_path / "e"
    old = _random(6, 4)
    _write_npz(folder, 1, np.arange(6), old)
    store = EmbeddingStore(folder)
    store.append(np.array([2, 10]), _random(2, 4, seed=2))
    before = store.load()
    store.compact()
    assert not list(folder.glob("*.npz"))
    assert len(list(folder.glob("shard-*.ids.npy"))) == 1
    after = EmbeddingStore(folder).load()
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])


def test_iter_batches_streams_each_live_vector_once(tmp_path):
    store = EmbeddingStore(tmp_path / "e")
    a, b = _random(7, 4), _random(5, 4, seed=1)
    store.append(np.arange(7), a)
    store.append(np.array([1, 20, 21, 22, 23]), b)  # id 1 replaced
    seen_ids, seen_vecs = [], []
    for ids, vecs in store.iter_batches(3):
        assert len(ids) == len(vecs) <= 3
        seen_ids.append(ids)
        seen_vecs.append(vecs)
    ids, vecs = np.concatenate(seen_ids), np.concatenate(seen_vecs)
    order = np.argsort(ids)
    all_ids, all_vecs = store.load()
    assert np.array_equal(ids[order], all_ids) and np.array_equal(vecs[order], all_vecs)
    assert store.dim == 4 and len(store) == 11


def test_vectors_of_unknown_ids_is_a_clear_error(tmp_path):
    store = EmbeddingStore(tmp_path / "e")
    store.append(np.arange(3), _random(3, 4))
    with pytest.raises(KeyError, match="42"):
        store.vectors_of(np.array([1, 42]))


@dataclass
class _Model:
    """What sync_index needs of an embedder."""

    name: str = "test-model"
    key: str = "test-model"
    dim: int = 64
    centered: bool = False


def _home_with_vectors(tmp_path, n: int, dim: int, shard: int):
    store = EmbeddingStore(tmp_path / "embeddings")
    vecs = _random(n, dim, seed=4)
    for start in range(0, n, shard):
        store.append(np.arange(start, min(n, start + shard)) + 1000, vecs[start:start + shard])
    item_ids = np.arange(n, dtype=np.int64) + 1
    image_ids = item_ids + 999
    return store, vecs, item_ids, image_ids


def test_streaming_rebuild_gives_the_same_index(tmp_path):
    store, vecs, item_ids, image_ids = _home_with_vectors(tmp_path, 3000, 32, 700)
    settings = Settings(index_build_batch=512)
    report = IndexReport(model="m", key="m")
    index = sync_index(tmp_path / "index", item_ids, image_ids, store, _Model(dim=32), settings, rebuild=True,
                       report=report)
    assert report.rebuilt and len(index) == 3000
    whole = build_index(item_ids, image_ids, vecs, settings, model="test-model")
    assert np.allclose(index.codec.center, whole.codec.center, atol=1e-5)
    assert np.allclose(index.stored_floats(item_ids), whole.stored_floats(item_ids), atol=1e-5)
    saved = load_index(tmp_path / "index", settings)
    for q in (0, 17, 2999):
        for binary in (False, True):
            a = saved.search(saved.stored_query(item_ids[q:q + 1]), 10, binary=binary)
            b = whole.search(whole.stored_query(item_ids[q:q + 1]), 10, binary=binary)
            assert a.ids.tolist() == b.ids.tolist()


def test_rebuild_does_not_hold_extra_copies_of_the_vectors(tmp_path):
    """Numpy allocations while rebuilding from N stored vectors stay under the vectors' size (before: a
    concatenated copy, an item-aligned copy and a normalised copy: 3.3x here; now about 0.5x: one batch, the id
    map and the item arrays). FAISS's own copy, the index itself, is C++ memory that tracemalloc does not see."""
    n, dim = 40_000, 64
    store, _, item_ids, image_ids = _home_with_vectors(tmp_path, n, dim, 8192)
    size = n * dim * 4
    settings = Settings(index_build_batch=4096)
    tracemalloc.start()
    try:
        sync_index(tmp_path / "index", item_ids, image_ids, store, _Model(dim=dim), settings, rebuild=True,
                   report=IndexReport(model="m", key="m"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.0 * size, f"peak {peak / 1e6:.1f} MB for {size / 1e6:.1f} MB of vectors"


def _results(engine, keys: list[str]) -> list[list[tuple[str, float]]]:
    return [[(h.item.key, round(h.score, 5)) for h in engine.search_item(k, k=8)] for k in keys]


@needs_data
def test_an_old_npz_home_rebuilds_and_searches_as_before(indexed_home, tmp_path):
    """A home whose embeddings are old .npz shards (real grocery and clothing images): `index --rebuild` reads
    them, gives the same results, and leaves .npy shards behind."""
    from viscover import Engine

    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    with Engine(indexed_home, Settings(workers=1)) as engine:
        keys = [i.key for i in engine.items(limit=200)[0]][::25]
        expect = _results(engine, keys)
        folder = home / "embeddings" / engine.embedder().key
    ids, vecs = EmbeddingStore(folder).load()
    for p in folder.glob("shard-*.npy"):
        p.unlink()
    half = len(ids) // 2
    _write_npz(folder, 1, ids[:half], vecs[:half])
    _write_npz(folder, 2, ids[half:], vecs[half:])
    shutil.rmtree(home / "index")
    with Engine(home, Settings(workers=1)) as engine:
        report = engine.index(rebuild=True)
        assert report.embedded == 0 and report.rebuilt
        assert _results(engine, keys) == expect
    assert not list(folder.glob("*.npz")) and list(folder.glob("shard-*.ids.npy"))
