"""The same catalogue and search on PostgreSQL (`--db postgresql+psycopg://...`). `.ci/run` starts a server and
sets VISCOVER_TEST_POSTGRES_URL; without it these tests are skipped."""

from __future__ import annotations

import os

import pytest

from conftest import SHARED, needs_data
from viscover import Engine, Settings
from viscover.catalog.store import Filters

URL = os.environ.get("VISCOVER_TEST_POSTGRES_URL")
pytestmark = [needs_data, pytest.mark.skipif(not URL, reason="set VISCOVER_TEST_POSTGRES_URL to a scratch "
                                                              "PostgreSQL database to run these tests")]


@pytest.fixture()
def pg_engine(tmp_path):
    from sqlalchemy import create_engine

    from viscover.catalog.schema import metadata

    scratch = create_engine(URL)
    metadata.drop_all(scratch)
    scratch.dispose()
    with Engine(tmp_path / "home", Settings(workers=1), db=URL) as engine:
        yield engine


def test_ingest_index_search_on_postgres(pg_engine, grocery_manifest, clothing_manifest, tmp_path):
    assert pg_engine.store.engine.dialect.name == "postgresql"
    assert pg_engine.ingest(grocery_manifest, image_roots=[SHARED]).counts.added == 35
    again = pg_engine.ingest(grocery_manifest, image_roots=[SHARED])
    assert (again.counts.added, again.counts.updated, again.counts.unchanged) == (0, 0, 35)
    assert pg_engine.ingest(clothing_manifest, image_roots=[SHARED]).counts.added == 24
    report = pg_engine.index()
    assert report.size == 59
    stats = pg_engine.store.stats()
    assert (stats["items"], stats["boards"], stats["tasks"]["product"]["labels"]) == (59, 4, 5)
    query = "val/Fruit/Banana/Banana_001.jpg"
    hits = pg_engine.search_item(query, k=4, filters=Filters(domain="photo", labels=(("category", "Banana"),)))
    assert len(hits) == 4 and all(h.item.labels["category"] == "Banana" for h in hits)
    board_hits = pg_engine.search_item(query, k=10, filters=Filters(board="sender-10"))
    assert len(board_hits) == 6
    assert pg_engine.remove([query]) == []
    assert pg_engine.store.stats()["items"] == 58
