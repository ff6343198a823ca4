"""Plain records passed between ingest and the store, and what the store hands back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from viscover.errors import Hint, Remedy, with_remedy

ITEM_FIELDS = ("title", "description", "domain", "split")
NO_IMAGE = "none"  # the format of an item's placeholder image when it was ingested without one (by id alone)
RANDOM_SOURCE = "random"  # an engagement log's traffic slice of lists shown in random order (viscover.rank.debias)


@dataclass(frozen=True)
class ImageRecord:
    """One distinct image content (items with identical bytes share it)."""

    sha256: str
    width: int
    height: int
    format: str
    nbytes: int
    uri: str

    @classmethod
    def absent(cls, key: str) -> "ImageRecord":
        """The placeholder image of an item listed without one: its own hash (no two items share it, so each
        keeps its own vector), no file, format NO_IMAGE; never read, embedded or counted as bad."""
        sha = hashlib.sha256(f"no-image:{key}".encode()).hexdigest()
        return cls(sha256=sha, width=0, height=0, format=NO_IMAGE, nbytes=0, uri="")


@dataclass
class ItemRecord:
    """An item as read from a source. Only fields present in the source are set; absent ones are left alone.

    `labels` maps task -> label, None meaning "remove this task's label"; `boards` None leaves memberships as they are.
    """

    key: str
    source: str
    image: ImageRecord
    fields: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str | None] = field(default_factory=dict)
    boards: list[str] | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """An item as stored, with its image, labels and boards."""

    id: int
    key: str
    image_id: int
    sha256: str
    uri: str
    source: str
    width: int
    height: int
    title: str | None
    description: str | None
    domain: str | None
    split: str | None
    labels: dict[str, str]
    boards: list[str]

    @property
    def has_image(self) -> bool:
        """False for an item ingested by id alone (its placeholder image has no file)."""
        return self.uri != ""

    def to_dict(self) -> dict:
        return {"id": self.key, "title": self.title, "description": self.description, "domain": self.domain,
                "split": self.split, "labels": dict(self.labels), "boards": list(self.boards),
                "image": {"uri": self.uri, "source": self.source, "sha256": self.sha256,
                          "width": self.width, "height": self.height}}


@dataclass(frozen=True)
class Problem:
    """One input that was skipped: where it was (file, row), why, and what would fix it (phrased by each shell)."""

    where: str
    reason: str
    remedy: Remedy | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"

    def describe(self, hint: Hint | None = None) -> str:
        """The problem, followed by a shell's phrasing of its remedy."""
        return with_remedy(str(self), self.remedy, hint)


@dataclass(frozen=True)
class EngagementRow:
    """One impression as read from a log, before its item ids are resolved."""

    where: str
    query: str
    item: str
    position: int
    clicked: int = 0
    saved: int = 0
    user: str | None = None
    ts: str | None = None
    source: str | None = None


@dataclass
class EngagementLog:
    """The stored impressions as arrays (item ids are internal catalogue ids), in insertion order."""

    query_item_id: np.ndarray  # int64
    item_id: np.ndarray  # int64
    position: np.ndarray  # int64, 1-based
    clicked: np.ndarray  # int8 0/1
    saved: np.ndarray  # int8 0/1
    source: np.ndarray  # object: str or None per row

    def __len__(self) -> int:
        return len(self.position)

    @property
    def randomized(self) -> np.ndarray:
        """Mask of impressions from randomly ordered lists (source == "random")."""
        return np.array([s == RANDOM_SOURCE for s in self.source], bool)

    def subset(self, mask: np.ndarray) -> "EngagementLog":
        """The impressions where `mask` is true, in the same order."""
        return EngagementLog(self.query_item_id[mask], self.item_id[mask], self.position[mask], self.clicked[mask],
                             self.saved[mask], self.source[mask])
