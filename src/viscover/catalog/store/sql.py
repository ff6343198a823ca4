"""Pieces the store's modules share: chunked IN (...) lists, statements built once, and items read by key or id."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from viscover.catalog import schema as t
from viscover.catalog.natural import natural_key
from viscover.catalog.records import ITEM_FIELDS, Item

CHUNK = 500  # ids per IN (...) list: well under every database's bound-parameter limit

# Statements read on every search, built once: building a SQLAlchemy statement per call cost more CPU than
# running it (benchmarks/serve_load.py; "ids" expand to IN (...) lists at execution).
ID_OF_KEY = select(t.items.c.id).where(t.items.c.key == bindparam("key"))
ITEMS_BY_ID = (select(t.items.c.id, t.items.c.key, t.items.c.image_id, t.items.c.source, t.images.c.sha256,
                      t.images.c.uri, t.images.c.width, t.images.c.height, *(t.items.c[f] for f in ITEM_FIELDS))
               .join(t.images, t.images.c.id == t.items.c.image_id)
               .where(t.items.c.id.in_(bindparam("ids", expanding=True))))
LABELS_OF = (select(t.labels.c.item_id, t.labels.c.task, t.labels.c.label)
             .where(t.labels.c.item_id.in_(bindparam("ids", expanding=True))))
BOARDS_OF = (select(t.board_items.c.item_id, t.boards.c.name)
             .join(t.boards, t.boards.c.id == t.board_items.c.board_id)
             .where(t.board_items.c.item_id.in_(bindparam("ids", expanding=True))))  # sorted naturally below
ITEMS_WITH_IMAGES = select(t.items.c.id).where(t.items.c.image_id.in_(bindparam("ids", expanding=True)))


def chunks(values: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    """`values` in slices of at most `size`, for IN (...) lists."""
    for i in range(0, len(values), size):
        yield values[i:i + size]


def items_by_key(conn: Connection, keys: list[str]) -> dict[str, dict]:
    """The stored rows (id, key, image, source, fields) of the known keys among `keys`, by key."""
    cols = [t.items.c.id, t.items.c.key, t.items.c.image_id, t.items.c.source] + [t.items.c[f] for f in ITEM_FIELDS]
    out: dict[str, dict] = {}
    for part in chunks(keys):
        for row in conn.execute(select(*cols).where(t.items.c.key.in_(part))).mappings():
            out[row["key"]] = dict(row)
    return out


def ids_by_key(conn: Connection, keys: list[str]) -> dict[str, int]:
    """{key: row id} of the known keys among `keys` (reads only those two columns)."""
    out: dict[str, int] = {}
    for part in chunks(keys):
        out.update({k: int(i) for i, k in conn.execute(select(t.items.c.id, t.items.c.key)
                                                       .where(t.items.c.key.in_(part)))})
    return out


def labels_of(conn: Connection, item_ids: list[int]) -> dict[int, dict[str, str]]:
    """{item id: {task: label}} of these items."""
    out: dict[int, dict[str, str]] = defaultdict(dict)
    for part in chunks(item_ids):
        for item_id, task, label in conn.execute(LABELS_OF, {"ids": list(part)}):
            out[item_id][task] = label
    return out


def boards_of(conn: Connection, item_ids: list[int]) -> dict[int, list[str]]:
    """{item id: board names, in natural order ("sender-2" before "sender-10")} of these items."""
    out: dict[int, list[str]] = defaultdict(list)
    for part in chunks(item_ids):
        for item_id, name in conn.execute(BOARDS_OF, {"ids": list(part)}):
            out[item_id].append(name)
    for names in out.values():
        names.sort(key=natural_key)
    return out


def items_by_ids(conn: Connection, ids: list[int]) -> dict[int, Item]:
    """Items by row id, with their image, labels and boards; unknown ids are absent."""
    out: dict[int, Item] = {}
    labels = labels_of(conn, ids)
    boards = boards_of(conn, ids)
    for part in chunks(ids):
        for r in conn.execute(ITEMS_BY_ID, {"ids": list(part)}).mappings():
            out[r["id"]] = Item(id=r["id"], key=r["key"], image_id=r["image_id"], sha256=r["sha256"],
                                uri=r["uri"], source=r["source"], width=r["width"], height=r["height"],
                                title=r["title"], description=r["description"], domain=r["domain"],
                                split=r["split"], labels=labels.get(r["id"], {}), boards=boards.get(r["id"], []))
    return out
