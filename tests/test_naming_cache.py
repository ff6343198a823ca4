"""Item names after a commit: a small catalogue is counted again on the request (names exact at once); a large one
(the last count took long) is named by the previous count while a thread counts again, so that a request never
waits for a count of a million labels."""

from __future__ import annotations

import threading

from viscover.catalog.naming import NamingCache


class Store:
    """A catalogue whose label counts change with its version; counting can be made to wait."""

    def __init__(self):
        self.v, self.counts, self.release = 1, {"product": {"Apple": 1, "Pear": 2}}, threading.Event()
        self.release.set()
        self.counted = 0

    def version(self):
        return self.v

    def facet_counts(self):
        assert self.release.wait(10)
        self.counted += 1
        return {}, {task: dict(labels) for task, labels in self.counts.items()}

    def count_items(self):
        return 3


def test_a_quick_count_is_redone_on_the_request_after_a_commit():
    store = Store()
    cache = NamingCache(store, inline_seconds=5.0)
    assert cache.get().counts["product"]["Apple"] == 1
    store.v, store.counts["product"]["Apple"] = 2, 7
    assert cache.get().counts["product"]["Apple"] == 7  # counted again at once
    assert cache.get().counts["product"]["Apple"] == 7 and store.counted == 2  # and kept


def test_a_slow_count_never_holds_a_request_the_previous_names_answer_meanwhile():
    store = Store()
    cache = NamingCache(store, inline_seconds=0.0)  # every count counts as slow
    first = cache.get()
    store.v, store.counts["product"]["Apple"] = 2, 7
    store.release.clear()  # the next count waits for the test
    assert cache.get() is first  # answered at once, from the previous count
    assert cache.get() is first and store.counted == 1  # one count running, not one per request
    store.release.set()
    assert cache.wait_counted(10)
    assert cache.get().counts["product"]["Apple"] == 7 and store.counted == 2
