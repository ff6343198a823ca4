"""Reading items: by key, by filters (labels, domain, board), a page at a time, and the counts `info` shows."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from sqlalchemy import Select, func, or_, select
from sqlalchemy.engine import Connection

from viscover.catalog import schema as t
from viscover.catalog.natural import natural_key
from viscover.catalog.records import NO_IMAGE, Item
from viscover.catalog.store.sql import ID_OF_KEY, ITEMS_WITH_IMAGES, chunks, items_by_ids
from viscover.errors import BadRequestError


@dataclass(frozen=True)
class Filters:
    """Restrict results to items having a label, a domain or a board, or whose id or title contains a text
    (case-insensitive); all given conditions must hold."""

    labels: tuple[tuple[str, str], ...] = ()  # (task, label) pairs
    domain: str | None = None
    board: str | None = None
    text: str | None = None

    def __bool__(self) -> bool:
        return bool(self.labels or self.domain or self.board or self.text)

    @classmethod
    def parse(cls, labels: Sequence[str] = (), domain: str | None = None, board: str | None = None,
              text: str | None = None) -> "Filters":
        """Filters from user text: each label as TASK=LABEL (or TASK:LABEL); empty strings mean "no condition"."""
        pairs = []
        for spec in labels:
            cut = min((i for i in (spec.find("="), spec.find(":")) if i > 0), default=-1)
            task, value = spec[:cut].strip(), spec[cut + 1:].strip()
            if cut < 0 or not task or not value:
                raise BadRequestError(f"label filter {spec!r}: expected TASK=LABEL, e.g. category=Shoes")
            pairs.append((task, value))
        return cls(labels=tuple(pairs), domain=domain or None, board=board or None, text=text or None)


def item_by_key(conn: Connection, key: str) -> Item | None:
    """One item by its key, None when the key is unknown."""
    row = conn.execute(ID_OF_KEY, {"key": key}).first()
    found = items_by_ids(conn, [row[0]]) if row is not None else {}
    return next(iter(found.values()), None)


def image_of_item_sha(conn: Connection, sha256: str) -> tuple[str, str] | None:
    """(uri, format) of the image with this content hash if some item shows it, else None: what may be served."""
    q = (select(t.images.c.uri, t.images.c.format).where(t.images.c.sha256 == sha256)
         .where(t.images.c.id.in_(select(t.items.c.image_id))))
    row = conn.execute(q).first()
    return None if row is None else (row[0], row[1])


def key_of_image(conn: Connection, sha256: str) -> str | None:
    """The id of an item showing the image with this content hash, None when no item does."""
    q = (select(t.items.c.key).join(t.images, t.images.c.id == t.items.c.image_id)
         .where(t.images.c.sha256 == sha256).limit(1))
    row = conn.execute(q).first()
    return None if row is None else row[0]


def images_to_embed(conn: Connection) -> list[tuple[int, str]]:
    """(image id, uri) of every image used by an item and not known to be undecodable; placeholders of items
    without images are not images to embed."""
    q = (select(t.images.c.id, t.images.c.uri)
         .where(t.images.c.error.is_(None), t.images.c.format != NO_IMAGE,
                t.images.c.id.in_(select(t.items.c.image_id)))
         .order_by(t.images.c.id))
    return [(int(i), u) for i, u in conn.execute(q)]


def filtered(filters: Filters) -> Select:
    """SELECT of the ids of items matching every condition of `filters`."""
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
    if filters.text is not None:
        pattern = _contains(filters.text)
        q = q.where(or_(t.items.c.key.ilike(pattern, escape="\\"), t.items.c.title.ilike(pattern, escape="\\")))
    return q


def _contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def keys_containing(conn: Connection, text: str, limit: int) -> list[str]:
    """Up to `limit` item ids containing `text` (case-insensitive), shortest first: candidates for "did you mean"."""
    q = (select(t.items.c.key).where(t.items.c.key.ilike(_contains(text), escape="\\"))
         .order_by(func.length(t.items.c.key), t.items.c.key).limit(limit))
    return [r[0] for r in conn.execute(q)]


def near_keys(conn: Connection, key: str, n: int = 3) -> list[str]:
    """Ids a user may have meant by an unknown `key`: the same file name in a folder ('1.jpg' ->
    'posters/1.jpg'), the same name with another extension or case, else close spellings of it."""
    tail = key.rstrip("/").rsplit("/", 1)[-1]
    stem = tail.rsplit(".", 1)[0] if "." in tail else tail
    candidates = keys_containing(conn, tail, 200) if tail else []
    if not candidates and len(stem) >= 2:
        candidates = keys_containing(conn, stem, 200)
    if not candidates and len(stem) >= 3:  # a typo: ids sharing the start of its name, ranked by spelling
        candidates = difflib.get_close_matches(key, keys_containing(conn, stem[:max(3, len(stem) // 2)], 500),
                                               n=n, cutoff=0.6)

    def name_of(c: str) -> str:
        return c.rsplit("/", 1)[-1].lower()

    def rank(c: str) -> tuple:
        name = name_of(c)
        return (name != tail.lower(), name.rsplit(".", 1)[0] != stem.lower(),
                -difflib.SequenceMatcher(None, key, c).ratio(), c)

    # an id containing the text is meant only if its file name reads alike ('1.jpg' is inside 'Lime_001.jpg')
    alike = [c for c in candidates
             if difflib.SequenceMatcher(None, tail.lower(), name_of(c)).ratio() >= 0.6
             or difflib.SequenceMatcher(None, key.lower(), c.lower()).ratio() >= 0.6]
    return sorted(alike, key=rank)[:n]


def filter_item_ids(conn: Connection, filters: Filters) -> np.ndarray:
    """Internal ids of items matching every condition of `filters`, sorted."""
    return np.array(sorted(r[0] for r in conn.execute(filtered(filters))), dtype=np.int64)


def page_items(conn: Connection, filters: Filters, offset: int, limit: int) -> tuple[list[Item], int]:
    """One page of items matching `filters` in catalogue order (by row id), and how many match in all."""
    q = filtered(filters)
    total = conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
    ids = [r[0] for r in conn.execute(q.order_by(t.items.c.id).offset(offset).limit(limit))]
    found = items_by_ids(conn, ids)
    return [found[i] for i in ids if i in found], int(total)


def board_sizes(conn: Connection) -> list[tuple[str, int, int]]:
    """Every board with items: (name, number of items, first item's row id), in natural order of names
    ("sender-2" before "sender-10", which SQL's text order cannot give portably)."""
    size = func.count(t.board_items.c.item_id)
    q = (select(t.boards.c.name, size, func.min(t.board_items.c.item_id))
         .join(t.board_items, t.board_items.c.board_id == t.boards.c.id)
         .group_by(t.boards.c.id, t.boards.c.name))
    return sorted(((n, int(c), int(first)) for n, c, first in conn.execute(q)), key=lambda r: natural_key(r[0]))


def page_boards(conn: Connection, offset: int, limit: int) -> tuple[list[tuple[str, int, int]], int]:
    """One page of boards in natural order of names: (name, number of items, first item's row id), and the
    number of boards."""
    rows = board_sizes(conn)
    return rows[offset:offset + limit], len(rows)


def facet_counts(conn: Connection) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """({domain: items}, {task: {label: items}}) over the whole catalogue, largest first; items without a domain
    are left out (they cannot be filtered for)."""
    domains = conn.execute(select(t.items.c.domain, func.count()).where(t.items.c.domain.is_not(None))
                           .group_by(t.items.c.domain).order_by(func.count().desc(), t.items.c.domain)).all()
    labels: dict[str, dict[str, int]] = {}
    for task, label, n in conn.execute(select(t.labels.c.task, t.labels.c.label, func.count())
                                       .group_by(t.labels.c.task, t.labels.c.label)
                                       .order_by(t.labels.c.task, func.count().desc(), t.labels.c.label)):
        labels.setdefault(task, {})[label] = int(n)
    return {d: int(n) for d, n in domains}, labels


def item_ids_with_images(conn: Connection, image_ids: Iterable[int]) -> np.ndarray:
    """Items showing any of these images (exact duplicates share an image)."""
    ids = sorted({int(i) for i in image_ids})
    out: list[int] = []
    for part in chunks(ids):
        out += [r[0] for r in conn.execute(ITEMS_WITH_IMAGES, {"ids": list(part)})]
    return np.array(sorted(out), dtype=np.int64)


def board_exists(conn: Connection, name: str) -> bool:
    """Whether a board of this name has ever been created."""
    return conn.execute(select(t.boards.c.id).where(t.boards.c.name == name)).first() is not None


def label_exists(conn: Connection, task: str, label: str) -> bool:
    """Whether any item has this label for this task."""
    q = select(t.labels.c.item_id).where(t.labels.c.task == task, t.labels.c.label == label).limit(1)
    return conn.execute(q).first() is not None


def near_labels(conn: Connection, task: str, label: str, n: int = 3) -> list[str]:
    """Values of a task a user may have meant by `label`: other case, or close spellings."""
    values = [r[0] for r in conn.execute(select(func.distinct(t.labels.c.label)).where(t.labels.c.task == task)
                                         .limit(100_000))]
    by_case = {v.lower(): v for v in values}
    close = difflib.get_close_matches(label.lower(), list(by_case), n=n, cutoff=0.6)
    return [by_case[c] for c in close]


def task_exists(conn: Connection, task: str) -> bool:
    """Whether any item has a label for this task."""
    return conn.execute(select(t.labels.c.item_id).where(t.labels.c.task == task).limit(1)).first() is not None


def count_items(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.items)).scalar_one())


def stats(conn: Connection) -> dict:
    """Counts for `viscover info`: items, images, labels per task, domains, boards, undecodable images."""
    scalar = lambda q: conn.execute(q).scalar_one()  # noqa: E731
    tasks = conn.execute(select(t.labels.c.task, func.count(), func.count(func.distinct(t.labels.c.label)))
                         .group_by(t.labels.c.task).order_by(t.labels.c.task)).all()
    domains = conn.execute(select(t.items.c.domain, func.count()).group_by(t.items.c.domain)
                           .order_by(t.items.c.domain)).all()
    return {
        "items": scalar(select(func.count()).select_from(t.items)),
        "images": scalar(select(func.count()).select_from(t.images)),
        "bad_images": scalar(select(func.count()).select_from(t.images).where(t.images.c.error.is_not(None))),
        "items_without_image": scalar(select(func.count()).select_from(t.items)
                                      .join(t.images, t.images.c.id == t.items.c.image_id)
                                      .where(t.images.c.format == NO_IMAGE)),
        "boards": scalar(select(func.count()).select_from(t.boards)),
        "board_memberships": scalar(select(func.count()).select_from(t.board_items)),
        "tasks": {task: {"labelled": n, "labels": k} for task, n, k in tasks},
        "domains": {(d if d is not None else "(none)"): n for d, n in domains},
    }


def bad_images(conn: Connection, limit: int) -> list[tuple[str, str]]:
    """(uri, reason) of up to `limit` images known to be undecodable."""
    return [(u, e) for u, e in conn.execute(select(t.images.c.uri, t.images.c.error)
                                            .where(t.images.c.error.is_not(None)).limit(limit))]
