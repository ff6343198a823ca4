"""Search by item on the hot path: no SQL once warm (the item, its copies and the results' metadata come from an
in-memory cache), and the cache follows every write, in this process or another: titles, labels, new and removed
items show in the very next search, and a removed item is never a result."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys

import pytest
from sqlalchemy import event

from conftest import SHARED, needs_data, write_csv
from viscover import Engine, Settings

pytestmark = needs_data


@pytest.fixture(scope="module")
def small_home(tmp_path_factory, grocery_manifest):
    home = tmp_path_factory.mktemp("cache-home") / "home"
    with Engine(home, Settings(workers=1)) as engine:
        engine.ingest(grocery_manifest, image_roots=[SHARED])
        engine.index()
    return home


@pytest.fixture()
def home(small_home, tmp_path):
    copy = tmp_path / "home"
    shutil.copytree(small_home, copy)
    return copy


def statements(engine: Engine) -> list[str]:
    """Every SQL statement the engine's catalogue runs from now on."""
    seen: list[str] = []
    event.listen(engine.store.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def answer(hits) -> list[tuple]:
    return [(h.item.key, h.item.title, dict(h.item.labels), round(h.score, 5), [d.key for d in h.duplicates])
            for h in hits]


def test_a_warm_search_by_item_runs_no_sql(indexed_home):
    with Engine(indexed_home, Settings(workers=1)) as engine:
        keys = [i.key for i in engine.items(limit=500)[0]]
        for key in keys:  # warm: each item and its results seen once
            engine.search_item(key, k=10)
        seen = statements(engine)
        for key in keys:
            engine.search_item(key, k=10)
        assert seen == []


def test_results_are_those_of_the_catalogue_itself(indexed_home):
    """The cached answers equal the answers read from the database on every search (cache off)."""
    with Engine(indexed_home, Settings(workers=1)) as cached, \
            Engine(indexed_home, Settings(workers=1, item_cache_items=0)) as uncached:
        keys = [i.key for i in cached.items(limit=500)[0]]
        for _ in range(2):  # cold, then warm
            for key in keys:
                assert answer(cached.search_item(key, k=15)) == answer(uncached.search_item(key, k=15)), key


def _rows(manifest) -> list[dict]:
    return list(csv.DictReader(open(manifest)))


def test_an_updated_title_and_label_show_in_the_next_search(home, grocery_manifest, tmp_path):
    rows = _rows(grocery_manifest)
    with Engine(home, Settings(workers=1)) as engine:
        query = rows[0]["id"]
        hits = engine.search_item(query, k=30)
        target = hits[0].item.key
        row = next(r for r in rows if r["id"] == target)
        engine.ingest(write_csv([{**row, "title": "Renamed here", "label.product": "Relabelled"}],
                                tmp_path / "u.csv"), image_roots=[SHARED])
        item = next(h.item for h in engine.search_item(query, k=30) if h.item.key == target)
        assert item.title == "Renamed here" and item.labels["product"] == "Relabelled"
        assert engine.item(target).title == "Renamed here"


def test_writes_by_another_process_show_in_the_next_search(home, grocery_manifest, tmp_path):
    rows = _rows(grocery_manifest)
    with Engine(home, Settings(workers=1)) as engine:
        query = rows[0]["id"]
        hits = engine.search_item(query, k=30)
        renamed, removed = hits[0].item.key, hits[1].item.key
        row = next(r for r in rows if r["id"] == renamed)
        manifest = write_csv([{**row, "title": "Renamed elsewhere"}], tmp_path / "u.csv")
        for args in (["ingest", str(manifest), "--image-root", str(SHARED)], ["remove", removed]):
            done = subprocess.run([sys.executable, "-m", "viscover", *args, "--home", str(home)],
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout + done.stderr
        after = engine.search_item(query, k=30)
        keys = [h.item.key for h in after]
        assert removed not in keys and all(removed not in [d.key for d in h.duplicates] for h in after)
        assert next(h.item for h in after if h.item.key == renamed).title == "Renamed elsewhere"


def test_a_removed_item_is_never_served_and_its_own_search_is_not_found(home, grocery_manifest):
    from viscover.errors import NotFoundError

    rows = _rows(grocery_manifest)
    with Engine(home, Settings(workers=1)) as engine, Engine(home, Settings(workers=1)) as other:
        query = rows[0]["id"]
        gone = engine.search_item(query, k=30)[0].item.key
        engine.search_item(gone, k=5)  # cached as a query too
        other.remove([gone])  # another connection: this engine learns it from the database's change counter
        assert gone not in [h.item.key for h in engine.search_item(query, k=30)]
        with pytest.raises(NotFoundError):
            engine.search_item(gone, k=5)
        with pytest.raises(NotFoundError):
            engine.item(gone)


def test_new_items_are_found_after_indexing_and_new_copies_are_excluded(home, grocery_manifest, tmp_path):
    rows = _rows(grocery_manifest)
    with Engine(home, Settings(workers=1)) as engine:
        query, other = rows[0]["id"], rows[1]["id"]

        def found(key: str) -> list[str]:
            hits = engine.search_item(key, k=50)  # more than the catalogue holds: every other item, or its copy
            return [h.item.key for h in hits] + [d.key for h in hits for d in h.duplicates]

        assert query in found(other)
        found(query)
        copy = {**rows[0], "id": "a-new-copy", "title": "New"}  # the same image: a copy of the query
        engine.ingest(write_csv([copy], tmp_path / "n.csv"), image_roots=[SHARED])
        engine.index()
        assert "a-new-copy" in found(other)
        assert "a-new-copy" not in found(query) and query not in found("a-new-copy")  # copies leave each other out


def test_every_request_thread_sees_a_write_in_its_next_search(home, grocery_manifest, tmp_path):
    """The change counter is read on one connection per thread: a commit seen by any thread clears what all of
    them share, and no thread keeps answering from before it."""
    from concurrent.futures import ThreadPoolExecutor

    rows = _rows(grocery_manifest)
    with Engine(home, Settings(workers=1)) as engine, Engine(home, Settings(workers=1)) as other, \
            ThreadPoolExecutor(4) as pool:
        query = rows[0]["id"]

        def titles(_=None) -> dict[str, str | None]:
            return {h.item.key: h.item.title for h in engine.search_item(query, k=30)}

        target = next(iter(list(pool.map(titles, range(16)))[0]))
        row = next(r for r in rows if r["id"] == target)
        for n in range(3):  # each write is seen by every thread, whichever thread noticed the one before
            other.ingest(write_csv([{**row, "title": f"Renamed {n}"}], tmp_path / f"u{n}.csv"), image_roots=[SHARED])
            assert {found[target] for found in pool.map(titles, range(16))} == {f"Renamed {n}"}
