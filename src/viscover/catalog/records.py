"""Plain records passed between ingest and the store, and what the store hands back."""

from __future__ import annotations

from dataclasses import dataclass, field

ITEM_FIELDS = ("title", "description", "domain", "split")


@dataclass(frozen=True)
class ImageRecord:
    """One distinct image content (items with identical bytes share it)."""

    sha256: str
    width: int
    height: int
    format: str
    nbytes: int
    uri: str


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


@dataclass(frozen=True)
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

    def to_dict(self) -> dict:
        return {"id": self.key, "title": self.title, "description": self.description, "domain": self.domain,
                "split": self.split, "labels": dict(self.labels), "boards": list(self.boards),
                "image": {"uri": self.uri, "source": self.source, "sha256": self.sha256,
                          "width": self.width, "height": self.height}}


@dataclass(frozen=True)
class Problem:
    """One input that was skipped: where it was (file, row) and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"
