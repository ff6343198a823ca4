"""The catalogue store: SQLite by default, any SQLAlchemy URL (PostgreSQL) too. All SQL of viscover lives here."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from sqlalchemy import and_, bindparam, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, OperationalError

from viscover.catalog import schema as t
from viscover.catalog.records import ITEM_FIELDS, ImageRecord, Item, ItemRecord
from viscover.errors import BadRequestError, ConfigError, NotFoundError

_CHUNK = 500  # ids per IN (...) list: well under every database's bound-parameter limit


@dataclass
class UpsertCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: "UpsertCounts") -> "UpsertCounts":
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


@dataclass(frozen=True)
class Filters:
    """Restrict results to items having a label, a domain or a board (all given conditions must hold)."""

    labels: tuple[tuple[str, str], ...] = ()  # (task, label) pairs
    domain: str | None = None
    board: str | None = None

    def __bool__(self) -> bool:
        return bool(self.labels or self.domain or self.board)

    @classmethod
    def parse(cls, labels: Sequence[str] = (), domain: str | None = None, board: str | None = None) -> "Filters":
        """Filters from user text: each label as TASK=LABEL (or TASK:LABEL); empty strings mean "no condition"."""
        pairs = []
        for spec in labels:
            cut = min((i for i in (spec.find("="), spec.find(":")) if i > 0), default=-1)
            task, value = spec[:cut].strip(), spec[cut + 1:].strip()
            if cut < 0 or not task or not value:
                raise BadRequestError(f"label filter {spec!r}: expected TASK=LABEL, e.g. category=Shoes")
            pairs.append((task, value))
        return cls(labels=tuple(pairs), domain=domain or None, board=board or None)


# Statements read on every search, built once: building a SQLAlchemy statement per call cost more CPU than
# running it (benchmarks/serve_load.py; "ids" expand to IN (...) lists at execution).
_ID_OF_KEY = select(t.items.c.id).where(t.items.c.key == bindparam("key"))
_ITEMS_BY_ID = (select(t.items.c.id, t.items.c.key, t.items.c.image_id, t.items.c.source, t.images.c.sha256,
                       t.images.c.uri, t.images.c.width, t.images.c.height, *(t.items.c[f] for f in ITEM_FIELDS))
                .join(t.images, t.images.c.id == t.items.c.image_id)
                .where(t.items.c.id.in_(bindparam("ids", expanding=True))))
_LABELS_OF = (select(t.labels.c.item_id, t.labels.c.task, t.labels.c.label)
              .where(t.labels.c.item_id.in_(bindparam("ids", expanding=True))))
_BOARDS_OF = (select(t.board_items.c.item_id, t.boards.c.name)
              .join(t.boards, t.boards.c.id == t.board_items.c.board_id)
              .where(t.board_items.c.item_id.in_(bindparam("ids", expanding=True))).order_by(t.boards.c.name))
_ITEMS_WITH_IMAGES = select(t.items.c.id).where(t.items.c.image_id.in_(bindparam("ids", expanding=True)))


def _chunks(values: Sequence, size: int = _CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


class CatalogStore:
    """Items, images, labels and boards in one SQL database, opened by URL."""

    def __init__(self, url: str):
        try:
            self.engine: Engine = create_engine(url, future=True)
        except (ArgumentError, ImportError) as e:
            raise ConfigError(f"database URL {url!r}: {e}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            t.metadata.create_all(self.engine)
        except OperationalError as e:
            raise ConfigError(f"cannot open the catalogue database {self.safe_url}: {e.orig}") from None

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    # ---- writes -------------------------------------------------------------------------------------------
    def upsert(self, records: Sequence[ItemRecord]) -> UpsertCounts:
        """Insert or update items (by key) in one transaction; identical records count as unchanged."""
        counts = UpsertCounts()
        if not records:
            return counts
        with self.engine.begin() as conn:
            image_ids = self._ensure_images(conn, [r.image for r in records])
            existing = self._items_by_key(conn, [r.key for r in records])
            old_labels = self._labels_of(conn, [row["id"] for row in existing.values()])
            old_boards = self._boards_of(conn, [row["id"] for row in existing.values()])
            new_rows = [r for r in records if r.key not in existing]
            ids: dict[str, int] = {}
            if new_rows:
                result = conn.execute(
                    insert(t.items).returning(t.items.c.id, t.items.c.key),
                    [{"key": r.key, "image_id": image_ids[r.image.sha256], "source": r.source,
                      **{f: r.fields.get(f) for f in ITEM_FIELDS}} for r in new_rows])
                ids.update({key: id_ for id_, key in result})
                counts.added = len(new_rows)
            label_rows, label_deletes, board_sets = [], [], {}
            for rec in records:
                row = existing.get(rec.key)
                if row is None:
                    item_id = ids[rec.key]
                    label_rows += [{"item_id": item_id, "task": k, "label": v} for k, v in rec.labels.items()
                                   if v is not None]
                    if rec.boards:
                        board_sets[item_id] = rec.boards
                    continue
                item_id = row["id"]
                changes = {f: v for f, v in rec.fields.items() if row[f] != v}
                if row["image_id"] != image_ids[rec.image.sha256]:
                    changes["image_id"] = image_ids[rec.image.sha256]
                if row["source"] != rec.source:
                    changes["source"] = rec.source
                have = old_labels.get(item_id, {})
                label_changes = {k: v for k, v in rec.labels.items() if have.get(k) != v}
                boards_changed = rec.boards is not None and set(rec.boards) != set(old_boards.get(item_id, []))
                if not (changes or label_changes or boards_changed):
                    counts.unchanged += 1
                    continue
                counts.updated += 1
                conn.execute(update(t.items).where(t.items.c.id == item_id)
                             .values(**changes, updated_at=func.now()))
                for task, label in label_changes.items():
                    if task in have:
                        label_deletes.append((item_id, task))
                    if label is not None:
                        label_rows.append({"item_id": item_id, "task": task, "label": label})
                if boards_changed:
                    board_sets[item_id] = rec.boards or []
            for item_id, task in label_deletes:
                conn.execute(delete(t.labels).where(and_(t.labels.c.item_id == item_id, t.labels.c.task == task)))
            if label_rows:
                conn.execute(insert(t.labels), label_rows)
            if board_sets:
                self._set_boards(conn, board_sets)
        return counts

    def _ensure_images(self, conn: Connection, recs: list[ImageRecord]) -> dict[str, int]:
        """Image ids by content hash, inserting new contents. A known content just read again successfully
        takes its new location and loses any earlier error (the file may have moved or been repaired)."""
        by_sha = {r.sha256: r for r in recs}
        found: dict[str, int] = {}
        for part in _chunks(list(by_sha)):
            q = select(t.images.c.id, t.images.c.sha256, t.images.c.uri, t.images.c.error).where(
                t.images.c.sha256.in_(part))
            for id_, sha, uri, error in conn.execute(q):
                found[sha] = id_
                if error is not None or uri != by_sha[sha].uri:
                    conn.execute(update(t.images).where(t.images.c.id == id_)
                                 .values(uri=by_sha[sha].uri, error=None))
        missing = [r for sha, r in by_sha.items() if sha not in found]
        if missing:
            conn.execute(insert(t.images), [{"sha256": r.sha256, "width": r.width, "height": r.height,
                                             "format": r.format, "nbytes": r.nbytes, "uri": r.uri} for r in missing])
            found.update(self._image_ids(conn, [r.sha256 for r in missing]))
        return found

    @staticmethod
    def _image_ids(conn: Connection, shas: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for part in _chunks(shas):
            out.update({sha: id_ for id_, sha in conn.execute(
                select(t.images.c.id, t.images.c.sha256).where(t.images.c.sha256.in_(part)))})
        return out

    @staticmethod
    def _items_by_key(conn: Connection, keys: list[str]) -> dict[str, dict]:
        cols = [t.items.c.id, t.items.c.key, t.items.c.image_id, t.items.c.source] + [t.items.c[f] for f in ITEM_FIELDS]
        out: dict[str, dict] = {}
        for part in _chunks(keys):
            for row in conn.execute(select(*cols).where(t.items.c.key.in_(part))).mappings():
                out[row["key"]] = dict(row)
        return out

    @staticmethod
    def _labels_of(conn: Connection, item_ids: list[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = defaultdict(dict)
        for part in _chunks(item_ids):
            for item_id, task, label in conn.execute(_LABELS_OF, {"ids": list(part)}):
                out[item_id][task] = label
        return out

    @staticmethod
    def _boards_of(conn: Connection, item_ids: list[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = defaultdict(list)
        for part in _chunks(item_ids):
            for item_id, name in conn.execute(_BOARDS_OF, {"ids": list(part)}):
                out[item_id].append(name)
        return out

    def _set_boards(self, conn: Connection, board_sets: dict[int, list[str]]) -> None:
        names = sorted({n for names in board_sets.values() for n in names})
        board_ids: dict[str, int] = {}
        for part in _chunks(names):
            board_ids.update({n: i for i, n in conn.execute(
                select(t.boards.c.id, t.boards.c.name).where(t.boards.c.name.in_(part)))})
        missing = [n for n in names if n not in board_ids]
        if missing:
            conn.execute(insert(t.boards), [{"name": n} for n in missing])
            for part in _chunks(missing):
                board_ids.update({n: i for i, n in conn.execute(
                    select(t.boards.c.id, t.boards.c.name).where(t.boards.c.name.in_(part)))})
        item_ids = list(board_sets)
        for part in _chunks(item_ids):
            conn.execute(delete(t.board_items).where(t.board_items.c.item_id.in_(part)))
        rows = [{"board_id": board_ids[n], "item_id": i} for i, ns in board_sets.items() for n in sorted(set(ns))]
        if rows:
            conn.execute(insert(t.board_items), rows)

    def item_ids_of(self, keys: Sequence[str]) -> dict[str, int]:
        """{key: row id} of the known keys among `keys`."""
        with self.engine.connect() as conn:
            return {key: row["id"] for key, row in self._items_by_key(conn, list(keys)).items()}

    def delete_items(self, keys: Sequence[str]) -> dict[str, int]:
        """Delete items by key (labels and memberships go with them); return {key: row id} of those deleted."""
        with self.engine.begin() as conn:
            found = {key: row["id"] for key, row in self._items_by_key(conn, list(keys)).items()}
            for part in _chunks(list(found.values())):
                conn.execute(delete(t.labels).where(t.labels.c.item_id.in_(part)))
                conn.execute(delete(t.board_items).where(t.board_items.c.item_id.in_(part)))
                conn.execute(delete(t.items).where(t.items.c.id.in_(part)))
        return found

    def mark_image_error(self, image_id: int, reason: str) -> None:
        """Remember that an image cannot be decoded, so it is not retried on every run."""
        with self.engine.begin() as conn:
            conn.execute(update(t.images).where(t.images.c.id == image_id).values(error=reason[:2000]))

    # ---- reads --------------------------------------------------------------------------------------------
    def item(self, key: str) -> Item:
        """One item by its key; NotFoundError names the key when it is unknown."""
        with self.engine.connect() as conn:
            row = conn.execute(_ID_OF_KEY, {"key": key}).first()
            found = self._items_by_ids(conn, [row[0]]) if row is not None else {}
        if not found:
            raise NotFoundError(f"unknown item id {key!r}; list items with `viscover info` or check the manifest")
        return next(iter(found.values()))

    def items_by_ids(self, ids: Sequence[int]) -> dict[int, Item]:
        """Items by internal row id (as stored in the index), with labels and boards."""
        with self.engine.connect() as conn:
            return self._items_by_ids(conn, [int(i) for i in ids])

    def _items_by_ids(self, conn: Connection, ids: list[int]) -> dict[int, Item]:
        out: dict[int, Item] = {}
        labels = self._labels_of(conn, ids)
        boards = self._boards_of(conn, ids)
        for part in _chunks(ids):
            for r in conn.execute(_ITEMS_BY_ID, {"ids": list(part)}).mappings():
                out[r["id"]] = Item(id=r["id"], key=r["key"], image_id=r["image_id"], sha256=r["sha256"],
                                    uri=r["uri"], source=r["source"], width=r["width"], height=r["height"],
                                    title=r["title"], description=r["description"], domain=r["domain"],
                                    split=r["split"], labels=labels.get(r["id"], {}), boards=boards.get(r["id"], []))
        return out

    def image_of_item_sha(self, sha256: str) -> tuple[str, str] | None:
        """(uri, format) of the image with this content hash if some item shows it, else None: what may be served."""
        q = (select(t.images.c.uri, t.images.c.format).where(t.images.c.sha256 == sha256)
             .where(t.images.c.id.in_(select(t.items.c.image_id))))
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return None if row is None else (row[0], row[1])

    def item_images(self) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, image ids) of every item, sorted by item id: what the index should contain."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.items.c.id, t.items.c.image_id).order_by(t.items.c.id)).all()
        arr = np.array(rows, dtype=np.int64).reshape(-1, 2)
        return arr[:, 0].copy(), arr[:, 1].copy()

    def images_to_embed(self) -> list[tuple[int, str]]:
        """(image id, uri) of every image used by an item and not known to be undecodable."""
        q = (select(t.images.c.id, t.images.c.uri)
             .where(t.images.c.error.is_(None), t.images.c.id.in_(select(t.items.c.image_id)))
             .order_by(t.images.c.id))
        with self.engine.connect() as conn:
            return [(int(i), u) for i, u in conn.execute(q)]

    def filter_item_ids(self, filters: Filters) -> np.ndarray:
        """Internal ids of items matching every condition of `filters`, sorted."""
        with self.engine.connect() as conn:
            return np.array(sorted(r[0] for r in conn.execute(self._filtered(filters))), dtype=np.int64)

    def page_items(self, filters: Filters = Filters(), offset: int = 0, limit: int = 50) -> tuple[list[Item], int]:
        """One page of items matching `filters` in catalogue order (by row id), and how many match in all."""
        q = self._filtered(filters)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
            ids = [r[0] for r in conn.execute(q.order_by(t.items.c.id).offset(offset).limit(limit))]
        found = self.items_by_ids(ids)
        return [found[i] for i in ids if i in found], int(total)

    def page_boards(self, offset: int = 0, limit: int = 50) -> tuple[list[tuple[str, int, int]], int]:
        """One page of boards by name: (name, number of items, first item's row id), and the number of boards."""
        size = func.count(t.board_items.c.item_id)
        q = (select(t.boards.c.name, size, func.min(t.board_items.c.item_id))
             .join(t.board_items, t.board_items.c.board_id == t.boards.c.id)
             .group_by(t.boards.c.id, t.boards.c.name).order_by(t.boards.c.name).offset(offset).limit(limit))
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count(func.distinct(t.board_items.c.board_id)))).scalar_one()
            return [(n, int(c), int(first)) for n, c, first in conn.execute(q)], int(total)

    def _filtered(self, filters: Filters):
        q = select(t.items.c.id)
        for task, label in filters.labels:
            sub = select(t.labels.c.item_id).where(t.labels.c.task == task, t.labels.c.label == label)
            q = q.where(t.items.c.id.in_(sub))
        if filters.domain is not None:
            q = q.where(t.items.c.domain == filters.domain)
        if filters.board is not None:
            sub = (select(t.board_items.c.item_id).join(t.boards, t.boards.c.id == t.board_items.c.board_id)
                   .where(t.boards.c.name == filters.board))
            q = q.where(t.items.c.id.in_(sub))
        return q

    def item_ids_with_images(self, image_ids: Iterable[int]) -> np.ndarray:
        """Items showing any of these images (exact duplicates share an image)."""
        ids = sorted({int(i) for i in image_ids})
        out: list[int] = []
        with self.engine.connect() as conn:
            for part in _chunks(ids):
                out += [r[0] for r in conn.execute(_ITEMS_WITH_IMAGES, {"ids": list(part)})]
        return np.array(sorted(out), dtype=np.int64)

    def board_memberships(self) -> tuple[np.ndarray, np.ndarray]:
        """(item id, board id) of every membership: the item-board graph's edges."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.board_items.c.item_id, t.board_items.c.board_id)).all()
        arr = np.array(rows, dtype=np.int64).reshape(-1, 2)
        return arr[:, 0].copy(), arr[:, 1].copy()

    def engaged_users(self) -> tuple[np.ndarray, list[str]]:
        """(item id, user) of every click or save by a known user: the item-user engagement graph's edges."""
        q = (select(t.events.c.item_id, t.events.c.user)
             .where(t.events.c.user.is_not(None), (t.events.c.clicked > 0) | (t.events.c.saved > 0)))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return np.array([r[0] for r in rows], np.int64), [r[1] for r in rows]

    def graph_signature(self) -> list[int]:
        """Changes whenever items or memberships are added or removed (to notice a stale graph)."""
        with self.engine.connect() as conn:
            items = conn.execute(select(func.count(), func.coalesce(func.max(t.items.c.id), 0))).one()
            edges = conn.execute(select(func.count(), func.coalesce(func.sum(t.board_items.c.item_id), 0),
                                        func.coalesce(func.sum(t.board_items.c.board_id), 0))
                                 .select_from(t.board_items)).one()
        return [int(v) for v in (*items, *edges)]

    def item_attributes(self) -> tuple[np.ndarray, list[str | None], dict[str, dict[int, str]]]:
        """(item ids sorted, domain of each, {task: {item id: label}}) for related-items features."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.items.c.id, t.items.c.domain).order_by(t.items.c.id)).all()
            labels: dict[str, dict[int, str]] = defaultdict(dict)
            for item_id, task, label in conn.execute(select(t.labels.c.item_id, t.labels.c.task, t.labels.c.label)):
                labels[task][item_id] = label
        return np.array([r[0] for r in rows], np.int64), [r[1] for r in rows], dict(labels)

    def board_exists(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(t.boards.c.id).where(t.boards.c.name == name)).first() is not None

    def task_exists(self, task: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(t.labels.c.item_id).where(t.labels.c.task == task).limit(1)).first() is not None

    def stats(self) -> dict:
        """Counts for `viscover info`: items, images, labels per task, domains, boards, undecodable images."""
        with self.engine.connect() as conn:
            scalar = lambda q: conn.execute(q).scalar_one()  # noqa: E731
            tasks = conn.execute(select(t.labels.c.task, func.count(), func.count(func.distinct(t.labels.c.label)))
                                 .group_by(t.labels.c.task).order_by(t.labels.c.task)).all()
            domains = conn.execute(select(t.items.c.domain, func.count()).group_by(t.items.c.domain)
                                   .order_by(t.items.c.domain)).all()
            return {
                "items": scalar(select(func.count()).select_from(t.items)),
                "images": scalar(select(func.count()).select_from(t.images)),
                "bad_images": scalar(select(func.count()).select_from(t.images).where(t.images.c.error.is_not(None))),
                "boards": scalar(select(func.count()).select_from(t.boards)),
                "board_memberships": scalar(select(func.count()).select_from(t.board_items)),
                "tasks": {task: {"labelled": n, "labels": k} for task, n, k in tasks},
                "domains": {(d if d is not None else "(none)"): n for d, n in domains},
            }

    def bad_images(self, limit: int = 20) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return [(u, e) for u, e in conn.execute(select(t.images.c.uri, t.images.c.error)
                                                    .where(t.images.c.error.is_not(None)).limit(limit))]


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
