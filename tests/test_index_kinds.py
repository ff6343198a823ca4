"""Every kind of index the engine can choose answers like exact search. The thresholds that pick HNSW (50,000
items), binary HNSW (2M), the FAISS filter selector (filters over 20,000 items) and tombstone compaction (20%
deleted) are settings, lowered here so that a small real catalogue reaches each branch through the Engine."""

from __future__ import annotations

import shutil

import pytest

from conftest import SHARED, needs_data, write_csv
from viscover import Engine, Settings
from viscover.catalog.store import Filters

pytestmark = needs_data

EXACT = dict(workers=1)
GRAPHS = dict(workers=1, hnsw_threshold=10, binary_hnsw_threshold=10, filter_exact_max=0)


@pytest.fixture(scope="module")
def homes(indexed_home, tmp_path_factory):
    """The shared indexed home (exact indexes) and a copy re-indexed with every threshold lowered."""
    copy = tmp_path_factory.mktemp("kinds") / "home"
    shutil.copytree(indexed_home, copy)
    with Engine(copy, Settings(**GRAPHS)) as engine:
        report = engine.index()
        assert report.rebuilt and report.embedded == 0  # the kind changed: rebuilt from stored embeddings
    return indexed_home, copy


def results(hits) -> list[tuple[str, float, list[str]]]:
    return [(h.item.key, round(h.score, 4), sorted(d.key for d in h.duplicates)) for h in hits]


def test_engine_builds_hnsw_indexes_above_the_thresholds(homes):
    _, graphs = homes
    with Engine(graphs, Settings(**GRAPHS)) as engine:
        kinds = engine.vector_index().describe()
    assert (kinds["float"], kinds["binary"]) == ("hnsw", "hnsw")


@pytest.mark.parametrize("binary", [False, True])
def test_graph_indexes_give_the_results_of_exact_search(homes, binary):
    """On 59 items an HNSW walk with efSearch 256 visits everything, so the results must be exactly equal, through
    item search, image search, filters (through the FAISS selector: filter_exact_max=0) and collapsing."""
    exact_home, graph_home = homes
    with Engine(exact_home, Settings(**EXACT)) as exact, Engine(graph_home, Settings(**GRAPHS)) as graphs:
        keys = sorted(i.key for i in exact.store.items_by_ids(exact.store.filter_item_ids(Filters())).values())
        catalog = Filters(domain="catalog")
        for key in keys[::3]:
            for filters in (Filters(), catalog, Filters(board="sender-10")):
                a = exact.search_item(key, k=8, binary=binary, filters=filters)
                b = graphs.search_item(key, k=8, binary=binary, filters=filters)
                assert results(a) == results(b), (key, filters)
                if filters == catalog:
                    assert a and {h.item.domain for h in b} == {"catalog"}
        photo = exact.store.item(keys[0]).source
        assert results(exact.search_image(photo, k=10, binary=binary)) == \
            results(graphs.search_image(photo, k=10, binary=binary))


def test_tombstones_are_excluded_then_compacted(homes, tmp_path):
    """Deleting from HNSW graphs leaves tombstones that no search returns; once more than compact_ratio of the
    index is dead, the next `index` rebuilds it without them, and results stay those of exact search."""
    _, graph_home = homes
    home = tmp_path / "home"
    shutil.copytree(graph_home, home)
    settings = Settings(**GRAPHS, compact_ratio=0.2)
    with Engine(home, settings) as engine:
        keys = sorted(i.key for i in engine.store.items_by_ids(engine.store.filter_item_ids(Filters())).values())
        query = keys[0]
        first = [h.item.key for h in engine.search_item(query, k=5, collapse=False)]
        assert engine.remove(first[:2]) == []
        index = engine.vector_index()
        assert len(index.tombstones) == 2 and len(index) == len(keys) - 2
        after = [h.item.key for h in engine.search_item(query, k=5, collapse=False)]
        assert not set(after) & set(first[:2]) and after[:3] == first[2:]
        report = engine.index()  # 2 of 59 dead: under the ratio, nothing to do
        assert not report.rebuilt and len(engine.vector_index().tombstones) == 2

        doomed = [k for k in keys if k != query and k not in first][:10]
        engine.remove(doomed)  # 12 of 59 dead: over 20%
        assert len(engine.vector_index().tombstones) == 12
        report = engine.index()
        assert report.rebuilt and report.rebuild_reason == "index kind or tombstones"
        compacted = engine.vector_index()
        assert len(compacted.tombstones) == 0 and len(compacted) == len(keys) - 12
        assert compacted.describe()["float"] == "hnsw"
        survivors = [h.item.key for h in engine.search_item(query, k=50, collapse=False)]
        assert not set(survivors) & set(first[:2] + doomed) and len(survivors) == len(keys) - 13

    # the same deletions on an exact index, rebuilt (a rebuild fits the codec's centre on the items left), give
    # the same results
    exact_home = tmp_path / "exact"
    shutil.copytree(homes[0], exact_home)
    with Engine(exact_home, Settings(**EXACT)) as exact:
        exact.remove(first[:2] + doomed)
        assert len(exact.vector_index().tombstones) == 0  # flat indexes delete in place
        exact.index(rebuild=True)
        assert [h.item.key for h in exact.search_item(query, k=50, collapse=False)] == survivors


def test_readding_a_tombstoned_item_rebuilds(homes, tmp_path):
    """An id tombstoned in a graph cannot be added back in place: `index` rebuilds. (SQLite gives the next new
    item the highest row id again once that row is deleted, so deleting the newest item and ingesting it again
    brings its tombstoned id back.)"""
    _, graph_home = homes
    home = tmp_path / "home"
    shutil.copytree(graph_home, home)
    with Engine(home, Settings(**GRAPHS, compact_ratio=0.5)) as engine:
        newest = int(engine.store.filter_item_ids(Filters()).max())
        item = engine.store.items_by_ids([newest])[newest]
        engine.remove([item.key])
        assert engine.vector_index().tombstones.tolist() == [newest]
        engine.ingest(write_csv([{"id": item.key, "path": item.source}], tmp_path / "again.csv"),
                      image_roots=[SHARED])
        assert engine.store.item(item.key).id == newest  # the tombstoned id is back
        report = engine.index()
        assert report.rebuilt and len(engine.vector_index().tombstones) == 0
        hits = engine.search_image(item.source, k=1)
        assert hits[0].item.key == item.key and hits[0].score == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("kind", ["binary", "ivfpq"])
def test_compressed_kinds_answer_like_exact_search_and_merge_at_the_next_index(homes, tmp_path, kind):
    """index_kind binary / ivfpq (as a memory_budget would choose on a large catalogue): the same results as exact
    search on 59 items (the short list covers them all), removals are tombstones until the next `index` merges
    them away, and results stay those of exact search after the same removals."""
    exact_home = tmp_path / "exact"
    home = tmp_path / "home"
    shutil.copytree(homes[0], exact_home)
    shutil.copytree(homes[0], home)
    settings = Settings(**EXACT, index_kind=kind, compact_ratio=0.1)
    with Engine(exact_home, Settings(**EXACT)) as exact, Engine(home, settings) as tiered:
        report = tiered.index()
        assert report.rebuilt and report.kind == kind and tiered.vector_index().describe()["float"] == kind
        keys = sorted(i.key for i in exact.store.items_by_ids(exact.store.filter_item_ids(Filters())).values())
        for key in keys[::4]:
            for binary in (False, True):
                assert results(exact.search_item(key, k=8, binary=binary)) == \
                    results(tiered.search_item(key, k=8, binary=binary)), (key, binary)
        doomed = keys[1:9]
        assert exact.remove(doomed) == [] and tiered.remove(doomed) == []
        trained = kind == "binary"  # 59 items train no IVF-PQ: they all stay in the exact delta
        about = tiered.vector_index().describe()
        assert (about["tombstones"], about["delta"]) == ((8, 0) if trained else (0, 51))
        report = tiered.index()  # binary: 8 of 59 dead, over compact_ratio: merged (no rebuild)
        assert not report.rebuilt and report.merged == trained
        about = tiered.vector_index().describe()
        assert (about["tombstones"], about["delta"], about["items"]) == (0, 0 if trained else 51, 51)
        for key in keys[9::5]:
            assert results(exact.search_item(key, k=50, collapse=False)) == \
                results(tiered.search_item(key, k=50, collapse=False))
