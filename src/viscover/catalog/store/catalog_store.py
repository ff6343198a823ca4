"""CatalogStore: the catalogue database opened by URL. It decides where transactions begin and end; the SQL of
each job is in a module of functions over a connection (writes, reads, arrays, events)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError

from viscover.catalog import schema as t
from viscover.catalog.records import EngagementLog, EngagementRow, Item, ItemRecord
from viscover.catalog.store import arrays, events, reads, writes
from viscover.catalog.store.changes import change_counter
from viscover.catalog.store.reads import Filters
from viscover.catalog.store.sql import ids_by_key, items_by_ids
from viscover.catalog.store.writes import UpsertCounts
from viscover.diskspace import disk_full
from viscover.errors import ConfigError, NotFoundError, Remedy


class CatalogStore:
    """Items, images, labels, boards and engagement in one SQL database, opened by URL."""

    def __init__(self, url: str, *, mmap_mb: int = 0):
        """`mmap_mb`: for SQLite, read the file through a memory map of up to this many MiB (shared with the
        operating system's page cache, so no copy per process or per connection)."""
        try:
            self.engine: Engine = create_engine(url, future=True)
        except (ArgumentError, ImportError) as e:
            raise ConfigError(f"database URL {url!r}: {e}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", partial(_sqlite_pragmas, mmap_bytes=max(0, mmap_mb) << 20))
            if self.engine.url.database not in (None, "", ":memory:"):
                event.listen(self.engine, "handle_error", _full_disk_of(Path(self.engine.url.database).parent))
        try:
            t.metadata.create_all(self.engine)
        except OperationalError as e:
            raise ConfigError(f"cannot open the catalogue database {self.safe_url}: {e.orig}") from None
        self._version = change_counter(self.engine)

    def version(self) -> int | None:
        """A number that changes whenever anyone commits to the catalogue (this process or another), read without
        touching a table; None when the database cannot say (then nothing read from it may be cached)."""
        return None if self._version is None else self._version()

    @property
    def safe_url(self) -> str:
        """The database URL without its password, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Release the database's pooled connections."""
        if self._version is not None:
            self._version.close()
        self.engine.dispose()

    # ---- writes: one transaction per call ------------------------------------------------------------------
    def upsert(self, records: Sequence[ItemRecord]) -> UpsertCounts:
        """Insert or update items (by key) in one transaction; identical records count as unchanged."""
        if not records:
            return UpsertCounts()
        with self.engine.begin() as conn:
            return writes.upsert(conn, records)

    def delete_items(self, keys: Sequence[str]) -> dict[str, int]:
        """Delete items by key (labels and memberships go with them); return {key: row id} of those deleted."""
        with self.engine.begin() as conn:
            return writes.delete_items(conn, keys)

    def mark_image_error(self, image_id: int, reason: str) -> None:
        """Remember that an image cannot be decoded, so it is not retried on every run."""
        with self.engine.begin() as conn:
            writes.mark_image_error(conn, image_id, reason)

    # ---- items ---------------------------------------------------------------------------------------------
    def item(self, key: str) -> Item:
        """One item by its key; NotFoundError names the key when it is unknown."""
        with self.engine.connect() as conn:
            found = reads.item_by_key(conn, key)
        if found is None:
            raise self.unknown_item(key)
        return found

    def unknown_item(self, key: str) -> NotFoundError:
        """The error for an unknown id: with the ids the user may have meant, or saying the catalogue is empty."""
        with self.engine.connect() as conn:
            if reads.count_items(conn) == 0:
                return NotFoundError(f"unknown item id {key!r}: the catalogue is empty",
                                     remedy=Remedy("ingest-images"))
            near = reads.near_keys(conn, key)
        meant = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
        return NotFoundError(f"unknown item id {key!r}{meant}", remedy=Remedy("list-items"))

    def item_ids_of(self, keys: Sequence[str]) -> dict[str, int]:
        """{key: row id} of the known keys among `keys`."""
        with self.engine.connect() as conn:
            return ids_by_key(conn, list(keys))

    def items_by_ids(self, ids: Sequence[int]) -> dict[int, Item]:
        """Items by internal row id (as stored in the index), with labels and boards."""
        with self.engine.connect() as conn:
            return items_by_ids(conn, [int(i) for i in ids])

    def image_of_item_sha(self, sha256: str) -> tuple[str, str] | None:
        """(uri, format) of the image with this content hash if some item shows it, else None: what may be served."""
        with self.engine.connect() as conn:
            return reads.image_of_item_sha(conn, sha256)

    def key_of_image(self, sha256: str) -> str | None:
        """The id of an item showing the image with this content hash, None when no item does."""
        with self.engine.connect() as conn:
            return reads.key_of_image(conn, sha256)

    def images_to_embed(self) -> list[tuple[int, str]]:
        """(image id, uri) of every image used by an item and not known to be undecodable."""
        with self.engine.connect() as conn:
            return reads.images_to_embed(conn)

    def filter_item_ids(self, filters: Filters) -> np.ndarray:
        """Internal ids of items matching every condition of `filters`, sorted."""
        with self.engine.connect() as conn:
            return reads.filter_item_ids(conn, filters)

    def page_items(self, filters: Filters = Filters(), offset: int = 0, limit: int = 50) -> tuple[list[Item], int]:
        """One page of items matching `filters` in catalogue order (by row id), and how many match in all."""
        with self.engine.connect() as conn:
            return reads.page_items(conn, filters, offset, limit)

    def page_boards(self, offset: int = 0, limit: int = 50) -> tuple[list[tuple[str, int, int]], int]:
        """One page of boards in natural order of names (name, number of items, first item's row id), and the
        number of boards."""
        with self.engine.connect() as conn:
            return reads.page_boards(conn, offset, limit)

    def board_sizes(self) -> list[tuple[str, int, int]]:
        """Every board with items: (name, number of items, first item's row id), in natural order of names."""
        with self.engine.connect() as conn:
            return reads.board_sizes(conn)

    def facet_counts(self) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """({domain: items}, {task: {label: items}}) over the whole catalogue."""
        with self.engine.connect() as conn:
            return reads.facet_counts(conn)

    def item_ids_with_images(self, image_ids: Iterable[int]) -> np.ndarray:
        """Items showing any of these images (exact duplicates share an image)."""
        with self.engine.connect() as conn:
            return reads.item_ids_with_images(conn, image_ids)

    def board_exists(self, name: str) -> bool:
        """Whether a board of this name exists."""
        with self.engine.connect() as conn:
            return reads.board_exists(conn, name)

    def check_filters(self, filters: Filters) -> None:
        """NotFoundError for a filter that no item can match: an unknown board, task or label value (with the
        values the user may have meant), so an empty result never hides a typo."""
        if not (filters.board is not None or filters.labels):
            return
        with self.engine.connect() as conn:
            if filters.board is not None and not reads.board_exists(conn, filters.board):
                raise NotFoundError(f"unknown board {filters.board!r}", remedy=Remedy("list-boards"))
            for task, label in filters.labels:
                if not reads.task_exists(conn, task):
                    raise NotFoundError(f"no item has a label for task {task!r}")
                if not reads.label_exists(conn, task, label):
                    near = reads.near_labels(conn, task, label)
                    meant = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
                    raise NotFoundError(f"no item has the label {task}={label!r}{meant}")

    def task_exists(self, task: str) -> bool:
        """Whether any item has a label for this task."""
        with self.engine.connect() as conn:
            return reads.task_exists(conn, task)

    def count_items(self) -> int:
        with self.engine.connect() as conn:
            return reads.count_items(conn)

    def stats(self) -> dict:
        """Counts for `viscover info`: items, images, labels per task, domains, boards, undecodable images."""
        with self.engine.connect() as conn:
            return reads.stats(conn)

    def bad_images(self, limit: int = 20) -> list[tuple[str, str]]:
        """(uri, reason) of up to `limit` images known to be undecodable."""
        with self.engine.connect() as conn:
            return reads.bad_images(conn, limit)

    # ---- the whole catalogue as arrays -----------------------------------------------------------------------
    def item_images(self) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, image ids) of every item, sorted by item id: what the index should contain."""
        with self.engine.connect() as conn:
            return arrays.item_images(conn)

    def board_memberships(self) -> tuple[np.ndarray, np.ndarray]:
        """(item id, board id) of every membership: the item-board graph's edges."""
        with self.engine.connect() as conn:
            return arrays.board_memberships(conn)

    def graph_signature(self) -> list[int]:
        """Changes whenever items or memberships are added or removed (to notice a stale graph)."""
        with self.engine.connect() as conn:
            return arrays.graph_signature(conn)

    def item_attributes(self) -> tuple[np.ndarray, list[str | None], dict[str, dict[int, str]]]:
        """(item ids sorted, domain of each, {task: {item id: label}}) for related-items features."""
        with self.engine.connect() as conn:
            return arrays.item_attributes(conn)

    # ---- engagement ----------------------------------------------------------------------------------------
    def add_impressions(self, rows: Sequence[EngagementRow]) -> list[tuple[EngagementRow, tuple[str, ...]]]:
        """Store impressions in one transaction (keys resolved inside it); rows whose query or item is not in the
        catalogue are not stored and come back with the unknown fields' names ("query", "item")."""
        with self.engine.begin() as conn:
            return events.add_impressions(conn, rows)

    def engagement_rows(self) -> EngagementLog:
        """Every stored impression, as arrays ordered by insertion."""
        with self.engine.connect() as conn:
            return events.engagement_rows(conn)

    def engagement_count(self) -> int:
        """How many impressions are stored."""
        with self.engine.connect() as conn:
            return events.engagement_count(conn)

    def clear_engagement(self) -> int:
        """Delete every stored impression (before reloading a full log); return how many were deleted."""
        with self.engine.begin() as conn:
            return events.clear_engagement(conn)

    def engaged_users(self) -> tuple[np.ndarray, list[str]]:
        """(item id, user) of every click or save by a known user: the item-user engagement graph's edges."""
        with self.engine.connect() as conn:
            return events.engaged_users(conn)


def _full_disk_of(folder: Path):
    """A handle_error listener: SQLite failing for want of space in `folder` raises DiskFullError (every query,
    opening included), instead of "database or disk is full" or "disk I/O error"."""

    def handle(context) -> None:
        full = disk_full(context.original_exception, folder)
        if full is not None:
            raise full from None

    return handle


def _sqlite_pragmas(dbapi_connection, _record, *, mmap_bytes: int = 0) -> None:
    cur = dbapi_connection.cursor()
    cur.execute(f"PRAGMA mmap_size={int(mmap_bytes)}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
