"""The whole catalogue as arrays, for what is built from it: the index (items and images), the item-board graph
(memberships and a signature to notice a stale graph) and related-items features (domains and labels)."""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from viscover.catalog import schema as t


def int_pairs(conn: Connection, statement) -> tuple[np.ndarray, np.ndarray]:
    """The two integer columns of a query's rows as two arrays. Read as one flat stream: np.array over SQLAlchemy
    rows probes each row for the array protocol through a failing key lookup, 15 s for 1M items (1.3 s here)."""
    rows = conn.execute(statement).all()
    flat = np.fromiter(itertools.chain.from_iterable(rows), np.int64, count=2 * len(rows)).reshape(-1, 2)
    return flat[:, 0].copy(), flat[:, 1].copy()


def item_images(conn: Connection) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, image ids) of every item, sorted by item id: what the index should contain."""
    return int_pairs(conn, select(t.items.c.id, t.items.c.image_id).order_by(t.items.c.id))


def board_memberships(conn: Connection) -> tuple[np.ndarray, np.ndarray]:
    """(item id, board id) of every membership: the item-board graph's edges."""
    return int_pairs(conn, select(t.board_items.c.item_id, t.board_items.c.board_id))


def graph_signature(conn: Connection) -> list[int]:
    """Changes whenever items or memberships are added or removed (to notice a stale graph)."""
    items = conn.execute(select(func.count(), func.coalesce(func.max(t.items.c.id), 0))).one()
    edges = conn.execute(select(func.count(), func.coalesce(func.sum(t.board_items.c.item_id), 0),
                                func.coalesce(func.sum(t.board_items.c.board_id), 0))
                         .select_from(t.board_items)).one()
    return [int(v) for v in (*items, *edges)]


def item_attributes(conn: Connection) -> tuple[np.ndarray, list[str | None], dict[str, dict[int, str]]]:
    """(item ids sorted, domain of each, {task: {item id: label}}) for related-items features."""
    rows = conn.execute(select(t.items.c.id, t.items.c.domain).order_by(t.items.c.id)).all()
    labels: dict[str, dict[int, str]] = defaultdict(dict)
    for item_id, task, label in conn.execute(select(t.labels.c.item_id, t.labels.c.task, t.labels.c.label)):
        labels[task][item_id] = label
    return np.array([r[0] for r in rows], np.int64), [r[1] for r in rows], dict(labels)
