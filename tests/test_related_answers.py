"""Related-items answers kept for repeated queries (related/answers.py): exact (the walks are seeded, so a kept
answer equals a fresh one), and never kept across a commit to the catalogue or a new service."""

from __future__ import annotations

import csv

import pytest

from conftest import SHARED, needs_data, write_csv
from viscover import Engine, Settings
from viscover.related.answers import AnswerCache


class Service:
    """Any object a weak reference can point to, standing for a related-items service."""


def test_answers_of_one_service_and_version_least_recent_dropped_first():
    cache, service = AnswerCache(2), Service()
    cache.put(service, 1, "a", [1])
    cache.put(service, 1, "b", [2])
    assert cache.get(service, 1, "a") == [1]  # "a" is now the most recent
    cache.put(service, 1, "c", [3])
    assert cache.get(service, 1, "b") is None
    assert cache.get(service, 1, "a") == [1] and cache.get(service, 1, "c") == [3]
    assert cache.get(service, 2, "a") is None  # another catalogue version
    assert cache.get(Service(), 1, "a") is None  # another service
    cache.put(service, 2, "d", [4])  # a newer version starts afresh
    assert cache.get(service, 1, "a") is None and cache.get(service, 2, "d") == [4]


def test_nothing_is_kept_without_a_version_or_with_no_room():
    service = Service()
    for cache, version in ((AnswerCache(10), None), (AnswerCache(0), 1)):
        cache.put(service, version, "a", [1])
        assert cache.get(service, version, "a") is None


def test_a_freed_service_never_owns_the_answers_of_its_successor():
    """A new service may take a freed one's id(): the cache holds a weak reference, not the id."""
    cache = AnswerCache(10)
    old = Service()
    cache.put(old, 1, "a", [1])
    del old
    assert cache.get(Service(), 1, "a") is None


@pytest.fixture()
def boarded(tmp_path, clothing_manifest):
    rows = list(csv.DictReader(open(clothing_manifest)))
    engine = Engine(tmp_path / "home", Settings(workers=1))
    engine.ingest(write_csv(rows[:16], tmp_path / "a.csv"), image_roots=[SHARED])
    yield engine, rows
    engine.close()


def _walks(engine, monkeypatch) -> list[int]:
    """Count the related-items computations (kept answers skip them)."""
    from viscover.related.items import RelatedItems

    calls, real = [], RelatedItems.related
    monkeypatch.setattr(RelatedItems, "related", lambda self, *a, **kw: calls.append(1) or real(self, *a, **kw))
    return calls


@needs_data
def test_a_repeated_query_is_answered_without_walking_again_and_equals_a_fresh_answer(boarded, monkeypatch):
    engine, rows = boarded
    query = rows[0]["id"]
    first = engine.related([query], k=8)
    calls = _walks(engine, monkeypatch)
    again = engine.related([query], k=8)
    assert calls == [] and [(h.item.key, h.score) for h in again] == [(h.item.key, h.score) for h in first]
    engine.related([query], k=5)  # another question: computed
    assert calls == [1]
    with Engine(engine.home.root, Settings(workers=1, related_cache_entries=0)) as fresh:
        assert [(h.item.key, h.score) for h in fresh.related([query], k=8)] == \
               [(h.item.key, h.score) for h in first]  # kept == computed afresh (the walks are seeded)


@needs_data
def test_a_commit_to_the_catalogue_drops_the_kept_answers(boarded, monkeypatch, tmp_path):
    engine, rows = boarded
    query = rows[0]["id"]
    shown = engine.related([query], k=8)[0].item.key
    retitled = [{**r, "title": "a new title"} for r in rows[:16] if r["id"] == shown]
    engine.ingest(write_csv(retitled, tmp_path / "t.csv"), image_roots=[SHARED])  # metadata only: same graph
    calls = _walks(engine, monkeypatch)
    hits = engine.related([query], k=8)
    assert calls == [1]  # computed again
    assert next(h for h in hits if h.item.key == shown).item.title == "a new title"
