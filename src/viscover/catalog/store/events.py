"""The engagement log's SQL: impressions added by catalogue key, read back as arrays, counted and cleared, and
the clicks and saves of known users (the item-user graph's edges). Reading log files is viscover.catalog.engagement's
job; this module only stores what it read."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from viscover.catalog import schema as t
from viscover.catalog.records import EngagementLog, EngagementRow
from viscover.catalog.store.sql import ids_by_key


def add_impressions(conn: Connection, rows: Sequence[EngagementRow]) -> list[tuple[EngagementRow, tuple[str, ...]]]:
    """Insert the impressions whose query and item are catalogue keys, resolving the keys in this transaction;
    return the others, each with the names of its unknown fields ("query", "item"), in the order given."""
    ids = ids_by_key(conn, sorted({r.query for r in rows} | {r.item for r in rows}))
    values, unknown = [], []
    for r in rows:
        missing = tuple(name for name, key in (("query", r.query), ("item", r.item)) if key not in ids)
        if missing:
            unknown.append((r, missing))
            continue
        values.append({"query_item_id": ids[r.query], "item_id": ids[r.item], "position": r.position,
                       "clicked": r.clicked, "saved": r.saved, "user": r.user, "ts": r.ts, "source": r.source})
    if values:
        conn.execute(insert(t.events), values)
    return unknown


def engagement_rows(conn: Connection) -> EngagementLog:
    """Every stored impression, as arrays ordered by insertion."""
    cols = [t.events.c.query_item_id, t.events.c.item_id, t.events.c.position, t.events.c.clicked,
            t.events.c.saved, t.events.c.source]
    rows = conn.execute(select(*cols).order_by(t.events.c.id)).all()
    if not rows:
        return EngagementLog(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                             np.zeros(0, np.int8), np.zeros(0, np.int8), np.zeros(0, object))
    q, i, p, c, s, src = zip(*rows)
    source = np.empty(len(rows), object)
    source[:] = src
    return EngagementLog(np.array(q, np.int64), np.array(i, np.int64), np.array(p, np.int64),
                         np.array(c, np.int8), np.array(s, np.int8), source)


def engagement_count(conn: Connection) -> int:
    """How many impressions are stored."""
    return int(conn.execute(select(func.count()).select_from(t.events)).scalar_one())


def clear_engagement(conn: Connection) -> int:
    """Delete every stored impression; return how many were deleted."""
    return int(conn.execute(delete(t.events)).rowcount or 0)


def engaged_users(conn: Connection) -> tuple[np.ndarray, list[str]]:
    """(item id, user) of every click or save by a known user: the item-user engagement graph's edges."""
    q = (select(t.events.c.item_id, t.events.c.user)
         .where(t.events.c.user.is_not(None), (t.events.c.clicked > 0) | (t.events.c.saved > 0)))
    rows = conn.execute(q).all()
    return np.array([r[0] for r in rows], np.int64), [r[1] for r in rows]
