"""Catalogue reads for people browsing it (the CLI and the web UI): pages of items and boards, and the image files
of items, addressed by content hash so that a caller can never name a path on the server."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from viscover.catalog.natural import natural_key
from viscover.catalog.records import NO_IMAGE, Item
from viscover.catalog.store import CatalogStore, Filters
from viscover.config import Settings
from viscover.errors import BadImageError, BadRequestError, NotFoundError, Remedy
from viscover.imaging import is_url, read_image_bytes
from viscover.imaging.thumbnails import SIZES as THUMBNAIL_SIZES
from viscover.imaging.thumbnails import thumbnail

SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BoardSummary:
    """A board with its number of items and its first item (a cover to show), if that item still exists."""

    name: str
    size: int
    cover: Item | None


ORDERS = ("ingest", "mixed")  # the orders items_page knows


@dataclass(frozen=True)
class Facets:
    """What the catalogue can be filtered by, with the number of items of each value, names in natural order."""

    total: int
    domains: dict[str, int]
    labels: dict[str, dict[str, int]]  # task -> label -> items
    boards: dict[str, int]

    def to_dict(self) -> dict:
        return {"total": self.total, "domains": self.domains, "labels": self.labels, "boards": self.boards}


def items_page(store: CatalogStore, filters: Filters, offset: int, limit: int, order: str = "ingest",
               seed: int = 0) -> tuple[list[Item], int]:
    """One page of the items matching `filters` and how many match. "ingest" is catalogue order; "mixed" is a
    shuffle by `seed`, the same for every page of one seed, so that a grid of a catalogue ingested product by
    product does not open on a screen of one product."""
    if order == "ingest":
        return store.page_items(filters, offset, limit)
    if order != "mixed":
        raise BadRequestError(f"order {order!r}: choose one of {', '.join(ORDERS)}")
    ids = store.filter_item_ids(filters)
    shuffled = ids[np.random.default_rng(seed).permutation(len(ids))]
    page = [int(i) for i in shuffled[offset:offset + limit]]
    found = store.items_by_ids(page)
    return [found[i] for i in page if i in found], len(ids)


def facets(store: CatalogStore) -> Facets:
    """Domains, labels per task and boards with their item counts, each in natural order of names."""
    domains, labels = store.facet_counts()
    ordered = lambda counts: dict(sorted(counts.items(), key=lambda kv: natural_key(kv[0])))  # noqa: E731
    boards = {name: size for name, size, _ in store.board_sizes()}
    return Facets(total=store.stats()["items"], domains=ordered(domains),
                  labels={task: ordered(values) for task, values in sorted(labels.items())}, boards=boards)


def boards_page(store: CatalogStore, offset: int, limit: int) -> tuple[list[BoardSummary], int]:
    """One page of boards in natural order of names ("sender-2" before "sender-10"), and the number of boards."""
    rows, total = store.page_boards(offset, limit)
    covers = store.items_by_ids([first for _, _, first in rows])
    return [BoardSummary(name, size, covers.get(first)) for name, size, first in rows], total


def board_page(store: CatalogStore, name: str, offset: int, limit: int) -> tuple[list[Item], int]:
    """One page of a board's items; NotFoundError for an unknown board."""
    if not store.board_exists(name):
        raise NotFoundError(f"unknown board {name!r}", remedy=Remedy("list-boards"))
    return store.page_items(Filters(board=name), offset, limit)


def catalogue_image(store: CatalogStore, sha256: str) -> tuple[str, str]:
    """(uri, format) of an image that some item shows, by its content hash; errors for anything else."""
    if not SHA256.fullmatch(sha256):
        raise BadRequestError(f"{sha256!r} is not an image hash (64 lowercase hex digits)",
                              remedy=Remedy("image-url"))
    found = store.image_of_item_sha(sha256)
    if found is None:
        raise NotFoundError(f"no catalogue item has the image {sha256}")
    if found[1] == NO_IMAGE:
        raise no_image(store.key_of_image(sha256) or sha256)
    return found


def no_image(key: str) -> NotFoundError:
    """The error for the image of an item ingested without one (by id, its vector imported)."""
    return NotFoundError(f"item {key!r} has no image stored; it was ingested from its vector alone")


def image_bytes(store: CatalogStore, sha256: str, max_bytes: int) -> tuple[bytes, str]:
    """The bytes of an item's image and its format (JPEG, PNG, ...), by content hash: read from its stored file
    without following a symbolic link, and only if they still hash to `sha256`. A file replaced since ingest (by
    other bytes, or by a link to any other file) is never served: NotFoundError."""
    uri, fmt = catalogue_image(store, sha256)
    gone = NotFoundError(f"the file of image {sha256} is no longer at its stored location, or has changed",
                         remedy=Remedy("ingest"))
    if is_url(uri):
        raise gone
    try:
        fd = os.open(uri, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))  # a link in its place fails here (ELOOP)
    except OSError:
        raise gone from None
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes or hashlib.sha256(data).hexdigest() != sha256:
        raise gone
    return data, fmt


def item_image(store: CatalogStore, key: str, settings: Settings) -> bytes:
    """The bytes of an item's image as ingested (a file read as image_bytes does, a URL downloaded again), to
    detect in or crop from; NotFoundError naming the item, never its location, when they are gone or changed."""
    item = store.item(key)
    if not item.has_image:
        raise no_image(key)
    try:
        if is_url(item.uri):
            data = read_image_bytes(item.uri, max_bytes=settings.max_image_bytes, timeout=settings.url_timeout,
                                    url_allow_hosts=settings.url_allow_hosts)
            if hashlib.sha256(data).hexdigest() == item.sha256:
                return data
        else:
            return image_bytes(store, item.sha256, settings.max_image_bytes)[0]
    except (BadImageError, NotFoundError):
        pass
    raise NotFoundError(f"the image of item {key!r} cannot be read as it was ingested (its file or URL is gone or "
                        "has changed)", remedy=Remedy("ingest"))


def thumbnail_file(store: CatalogStore, sha256: str, size: int, cache: Path, settings: Settings) -> Path:
    """A JPEG thumbnail (longest side `size`, one of THUMBNAIL_SIZES) of an item's image, made once into `cache`
    from the image's verified bytes (image_bytes)."""
    if size not in THUMBNAIL_SIZES:
        raise BadRequestError(f"thumbnail size {size}: choose one of {', '.join(map(str, THUMBNAIL_SIZES))}")
    catalogue_image(store, sha256)  # a known image, even when its thumbnail is cached
    try:
        return thumbnail(sha256, size, cache, lambda: image_bytes(store, sha256, settings.max_image_bytes)[0],
                         max_pixels=settings.max_image_pixels)
    except BadImageError as e:
        raise NotFoundError(f"image {sha256} cannot be shown: {e}") from None
