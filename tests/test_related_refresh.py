"""Related items after a write never wait for the graph to be rebuilt: the rebuild runs off the request path while
queries keep answering from the previous graph, and the new graph is swapped in when it is ready."""

from __future__ import annotations

import csv
import threading

import pytest

from conftest import SHARED, needs_data, write_csv
from viscover import Engine, Settings

pytestmark = needs_data


@pytest.fixture()
def blocked_rebuild(monkeypatch):
    """Graph builds that wait for the test's go-ahead: `started` is set when a build begins, `go` lets it finish."""
    import viscover.graph.cache as cache

    started, go = threading.Event(), threading.Event()
    real = cache.item_board_graph

    def build(store):
        started.set()
        assert go.wait(20), "the test never released the rebuild"
        return real(store)

    monkeypatch.setattr(cache, "item_board_graph", build)
    return started, go


def test_a_write_does_not_stall_related_items_and_the_new_graph_is_swapped_in(tmp_path, clothing_manifest,
                                                                              blocked_rebuild):
    started, go = blocked_rebuild
    rows = list(csv.DictReader(open(clothing_manifest)))
    first, extra = rows[:12], rows[12:14]
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        engine.ingest(write_csv(first, tmp_path / "a.csv"), image_roots=[SHARED])
        go.set()  # the first graph ever is built on the request path: there is no older one to answer from
        query = first[0]["id"]
        before = [h.item.key for h in engine.related([query], k=20)]
        go.clear()
        started.clear()
        # the new items share the query's board: once the graph is rebuilt, walks from the query reach them
        board = first[0]["boards"]
        engine.ingest(write_csv([{**r, "boards": board} for r in extra], tmp_path / "b.csv"), image_roots=[SHARED])

        during = [h.item.key for h in engine.related([query], k=20)]  # answered while the rebuild waits
        assert started.wait(30), "no rebuild was started after the write"
        assert during == before  # the previous graph answered; the request did not wait for the rebuild
        go.set()
        assert engine._related_items().wait_refreshed(60)
        after = {h.item.key for h in engine.related([query], k=20)}
        assert {r["id"] for r in extra} <= after  # swapped in: the new items are related now


def test_a_removed_item_is_never_a_related_result_even_from_the_previous_graph(tmp_path, clothing_manifest,
                                                                             blocked_rebuild):
    started, go = blocked_rebuild
    rows = list(csv.DictReader(open(clothing_manifest)))[:12]
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        engine.ingest(write_csv(rows, tmp_path / "a.csv"), image_roots=[SHARED])
        go.set()
        query = rows[0]["id"]
        gone = [h.item.key for h in engine.related([query], k=20)][0]
        go.clear()
        engine.remove([gone])
        during = [h.item.key for h in engine.related([query], k=20)]
        assert gone not in during and during
        go.set()
        assert engine._related_items().wait_refreshed(60)
        assert gone not in [h.item.key for h in engine.related([query], k=20)]


def test_a_new_item_as_the_query_is_answered_from_the_new_graph(tmp_path, clothing_manifest):
    """An item the previous graph does not know cannot be answered from it: that request builds the new graph."""
    rows = list(csv.DictReader(open(clothing_manifest)))
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        engine.ingest(write_csv(rows[:12], tmp_path / "a.csv"), image_roots=[SHARED])
        engine.related([rows[0]["id"]], k=5)
        extra = rows[12:14]
        engine.ingest(write_csv([{**r, "boards": "new-board"} for r in extra], tmp_path / "b.csv"),
                      image_roots=[SHARED])
        hits = engine.related([extra[0]["id"]], k=3, score_by="pixie")
        assert [h.item.key for h in hits] == [extra[1]["id"]]
