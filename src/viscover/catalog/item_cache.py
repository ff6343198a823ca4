"""Items kept in memory for the search hot path: by key, by row id, the items showing an image (exact copies) and
the items matching filters. Everything kept is dropped as soon as the catalogue's change counter moves (any commit,
by this process or another: `CatalogStore.version`), so a search never shows an old title or a deleted item; a warm
search by item then runs no SQL at all."""

from __future__ import annotations

import threading
from typing import Callable, Iterable, Sequence

import numpy as np

from viscover.catalog.records import Item
from viscover.catalog.store import CatalogStore, Filters

FILTER_SETS = 64  # filter results kept (each up to one id per item)


class ItemCache:
    """A read-through cache over a CatalogStore's item reads, up to `max_items` items (0, or a database without a
    change counter: every read goes to the database). Thread-safe."""

    def __init__(self, store: CatalogStore, max_items: int):
        self.store, self.max_items = store, max_items
        self.enabled = max_items > 0 and store.version() is not None
        self._lock = threading.Lock()
        self._seen: int | None = None  # the catalogue version of what is kept
        self._by_id: dict[int, Item] = {}
        self._id_of: dict[str, int] = {}
        self._copies: dict[tuple[int, ...], np.ndarray] = {}
        self._filters: dict[Filters, np.ndarray] = {}
        self._checked: set[Filters] = set()

    def _current(self) -> int:
        """The catalogue's version now, after dropping whatever was kept under an older one. Versions only grow: a
        caller that read its version before a commit must not take the cache back to it (whatever it reads may
        already be newer, and is not kept)."""
        version = self.store.version()
        with self._lock:
            if self._seen is None or version > self._seen:
                self._by_id, self._id_of, self._copies, self._filters = {}, {}, {}, {}
                self._checked = set()
                self._seen = version
        return version

    def _keep(self, version: int, table: dict, key, value, limit: int) -> None:
        """Keep key -> value if the catalogue is still at `version` (what was read may predate a newer commit)."""
        with self._lock:
            if self._seen != version:
                return
            if key not in table and len(table) >= limit:
                table.pop(next(iter(table)))  # the oldest entry
            table[key] = value

    def item(self, key: str) -> Item:
        """One item by its key; NotFoundError names an unknown key (never cached)."""
        if not self.enabled:
            return self.store.item(key)
        version = self._current()
        row = self._id_of.get(key)
        found = self._by_id.get(row) if row is not None else None
        if found is None:
            found = self.store.item(key)
            self._keep(version, self._by_id, found.id, found, self.max_items)
            self._keep(version, self._id_of, key, found.id, self.max_items)
        return found

    def items_by_ids(self, ids: Sequence[int]) -> dict[int, Item]:
        """Items by row id; unknown ids (deleted items) are absent."""
        if not self.enabled:
            return self.store.items_by_ids(ids)
        version = self._current()
        by_id = self._by_id
        out: dict[int, Item] = {}
        missing = []
        for i in ids:
            found = by_id.get(int(i))
            if found is None:
                missing.append(int(i))
            else:
                out[int(i)] = found
        if missing:
            for i, found in self.store.items_by_ids(missing).items():
                out[i] = found
                self._keep(version, self._by_id, i, found, self.max_items)
        return out

    def item_ids_with_images(self, image_ids: Iterable[int]) -> np.ndarray:
        """Items showing any of these images (exact duplicates share an image)."""
        key = tuple(sorted({int(i) for i in image_ids}))
        return self._array(self._copies, key, self.store.item_ids_with_images, self.max_items)

    def filter_item_ids(self, filters: Filters) -> np.ndarray:
        """Row ids of the items matching every condition of `filters`, sorted."""
        return self._array(self._filters, filters, self.store.filter_item_ids, FILTER_SETS)

    def _array(self, table: dict, key, load: Callable[..., np.ndarray], limit: int) -> np.ndarray:
        """load(key), kept read-only in `table` while the catalogue stays at the version it was read under."""
        if not self.enabled:
            return load(key)
        version = self._current()
        found = table.get(key)
        if found is None:
            found = load(key)
            found.setflags(write=False)
            self._keep(version, table, key, found, limit)
        return found

    def check_filters(self, filters: Filters) -> None:
        """NotFoundError for a filter no item can match (`CatalogStore.check_filters`); a passed check is kept."""
        if not filters or not self.enabled:
            return self.store.check_filters(filters)
        version = self._current()
        if filters in self._checked:
            return
        self.store.check_filters(filters)
        with self._lock:
            if self._seen == version and len(self._checked) < FILTER_SETS:
                self._checked.add(filters)
