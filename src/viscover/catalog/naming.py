"""What people see an item called (tiles, pages, API `name`): its title, else its most specific label, else its
file name. "Most specific" is the label value the fewest items share, and only if not every item shares it: a
folder ingested as `posters/MovieImages/*.jpg` labels every item "MovieImages", which names none of them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from viscover.catalog.records import Item
from viscover.catalog.sources import IMAGE_SUFFIXES
from viscover.catalog.store import CatalogStore


@dataclass(frozen=True)
class Naming:
    """Label counts of one catalogue, to name its items."""

    counts: dict[str, dict[str, int]]  # task -> label -> items having it
    total: int  # items in the catalogue

    def name(self, item: Item) -> str:
        if item.title:
            return item.title
        # fewest items first; on a tie (two tasks splitting these items alike), the longer label, usually the finer
        # name: "Golden-Delicious" rather than "Apple"
        shared = [(self.counts.get(task, {}).get(label, self.total), -len(label), task, label)
                  for task, label in item.labels.items() if label]
        if shared and min(shared)[0] < self.total:
            return min(shared)[-1]
        tail = item.key.rstrip("/").rsplit("/", 1)[-1] or item.key
        stem, dot, suffix = tail.rpartition(".")
        return stem if dot and stem and f".{suffix.lower()}" in IMAGE_SUFFIXES else tail


class NamingCache:
    """The Naming of a store, counted again after any commit to it (the store's change counter: this process or
    another), so that naming a page of items costs no query; a database without a counter is counted again after
    a write here or at most `ttl` seconds later.

    Counting takes 0.7 s at 1M items, and an ingest commits batch after batch: when the last count took longer
    than `inline_seconds`, a request after a commit is named by the previous count (names lag the commit by one
    count) while a thread of its own counts again; a small catalogue is counted on the request, as exact as ever."""

    def __init__(self, store: CatalogStore, ttl: float = 30.0, inline_seconds: float = 0.05):
        self._store, self._ttl, self._inline = store, ttl, inline_seconds
        self._lock = threading.Lock()
        self._kept: tuple[int | None, float, Naming] | None = None
        self._took = 0.0  # seconds the last count took
        self._counting: threading.Thread | None = None

    def _stale(self, kept, version) -> bool:
        return kept[0] != version or (version is None and time.monotonic() - kept[1] > self._ttl)

    def _count(self, version: int | None) -> Naming:
        start = time.monotonic()
        _, labels = self._store.facet_counts()
        naming = Naming(labels, self._store.count_items())
        with self._lock:
            self._took = time.monotonic() - start
            if self._kept is None or self._kept[0] != version or version is None:
                self._kept = (version, time.monotonic(), naming)
        return naming

    def _count_in_background(self, version: int | None) -> None:
        """Start a count of the catalogue at `version` unless one runs. The caller holds the lock."""
        if self._counting is not None and self._counting.is_alive():
            return
        self._counting = threading.Thread(target=self._count, args=(version,), name="viscover-naming", daemon=True)
        self._counting.start()

    def get(self) -> Naming:
        version = self._store.version()
        with self._lock:
            kept = self._kept
            if kept is not None and not self._stale(kept, version):
                return kept[2]
            if kept is not None and self._took > self._inline:
                self._count_in_background(version)
                return kept[2]
        return self._count(version)

    def wait_counted(self, timeout: float | None = None) -> bool:
        """Wait until no background count runs (True), or `timeout` seconds passed (False)."""
        thread = self._counting
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def invalidate(self) -> None:
        with self._lock:
            self._kept = None
