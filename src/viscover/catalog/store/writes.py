"""Writing items: upsert by key (images by content hash, labels, board memberships), delete, mark bad images.

Each function runs inside the caller's transaction (`CatalogStore` opens it), so a batch is all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from viscover.catalog import schema as t
from viscover.catalog.records import ITEM_FIELDS, ImageRecord, ItemRecord
from viscover.catalog.store.sql import boards_of, chunks, items_by_key, labels_of


@dataclass
class UpsertCounts:
    """What an upsert did: items added, items changed, items already as given."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: "UpsertCounts") -> "UpsertCounts":
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


def upsert(conn: Connection, records: Sequence[ItemRecord]) -> UpsertCounts:
    """Insert or update items (by key); identical records count as unchanged."""
    counts = UpsertCounts()
    if not records:
        return counts
    image_ids = _ensure_images(conn, [r.image for r in records])
    existing = items_by_key(conn, [r.key for r in records])
    old_labels = labels_of(conn, [row["id"] for row in existing.values()])
    old_boards = boards_of(conn, [row["id"] for row in existing.values()])
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
        _set_boards(conn, board_sets)
    return counts


def _ensure_images(conn: Connection, recs: list[ImageRecord]) -> dict[str, int]:
    """Image ids by content hash, inserting new contents. A known content just read again successfully
    takes its new location and loses any earlier error (the file may have moved or been repaired)."""
    by_sha = {r.sha256: r for r in recs}
    found: dict[str, int] = {}
    for part in chunks(list(by_sha)):
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
        found.update(_image_ids(conn, [r.sha256 for r in missing]))
    return found


def _image_ids(conn: Connection, shas: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in chunks(shas):
        out.update({sha: id_ for id_, sha in conn.execute(
            select(t.images.c.id, t.images.c.sha256).where(t.images.c.sha256.in_(part)))})
    return out


def _set_boards(conn: Connection, board_sets: dict[int, list[str]]) -> None:
    """Make each item's memberships exactly the given boards, creating boards not seen before."""
    names = sorted({n for names in board_sets.values() for n in names})
    board_ids: dict[str, int] = {}
    for part in chunks(names):
        board_ids.update({n: i for i, n in conn.execute(
            select(t.boards.c.id, t.boards.c.name).where(t.boards.c.name.in_(part)))})
    missing = [n for n in names if n not in board_ids]
    if missing:
        conn.execute(insert(t.boards), [{"name": n} for n in missing])
        for part in chunks(missing):
            board_ids.update({n: i for i, n in conn.execute(
                select(t.boards.c.id, t.boards.c.name).where(t.boards.c.name.in_(part)))})
    item_ids = list(board_sets)
    for part in chunks(item_ids):
        conn.execute(delete(t.board_items).where(t.board_items.c.item_id.in_(part)))
    rows = [{"board_id": board_ids[n], "item_id": i} for i, ns in board_sets.items() for n in sorted(set(ns))]
    if rows:
        conn.execute(insert(t.board_items), rows)


def delete_items(conn: Connection, keys: Sequence[str]) -> dict[str, int]:
    """Delete items by key (labels and memberships go with them; events by ON DELETE CASCADE); return
    {key: row id} of those deleted."""
    found = {key: row["id"] for key, row in items_by_key(conn, list(keys)).items()}
    for part in chunks(list(found.values())):
        conn.execute(delete(t.labels).where(t.labels.c.item_id.in_(part)))
        conn.execute(delete(t.board_items).where(t.board_items.c.item_id.in_(part)))
        conn.execute(delete(t.items).where(t.items.c.id.in_(part)))
    return found


def mark_image_error(conn: Connection, image_id: int, reason: str) -> None:
    """Remember that an image cannot be decoded, so it is not retried on every run."""
    conn.execute(update(t.images).where(t.images.c.id == image_id).values(error=reason[:2000]))
