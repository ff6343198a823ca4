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
    a write here or at most `ttl` seconds later."""

    def __init__(self, store: CatalogStore, ttl: float = 30.0):
        self._store, self._ttl = store, ttl
        self._lock = threading.Lock()
        self._kept: tuple[int | None, float, Naming] | None = None

    def get(self) -> Naming:
        version = self._store.version()
        with self._lock:
            kept = self._kept
            if kept is None or kept[0] != version or (version is None and time.monotonic() - kept[1] > self._ttl):
                _, labels = self._store.facet_counts()
                kept = self._kept = (version, time.monotonic(), Naming(labels, self._store.count_items()))
            return kept[2]

    def invalidate(self) -> None:
        with self._lock:
            self._kept = None
