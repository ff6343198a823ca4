"""Bringing a model's saved index in line with the catalogue: add and remove in place when possible, else rebuild
from the stored embeddings; what was done goes into an `IndexReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from viscover.catalog.records import Problem
from viscover.config import Settings
from viscover.embed.vectors import EmbeddingStore
from viscover.errors import IndexCorruptError
from viscover.index.base import Mergeable, VectorIndex
from viscover.index.registry import build_index_batches, load_index

if TYPE_CHECKING:
    from viscover.embed import Embedder


@dataclass
class IndexReport:
    """What `index` did: embeddings computed and failed, and how the vector index changed."""

    model: str
    key: str
    embedded: int = 0
    failed: list[Problem] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    rebuilt: bool = False
    rebuild_reason: str = ""
    merged: bool = False  # a tiered index folded its delta and tombstones into a new main
    size: int = 0
    kind: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"model": self.model, "key": self.key, "embedded": self.embedded, "failed": len(self.failed),
                "problems": [str(p) for p in self.failed], "added": self.added, "removed": self.removed,
                "rebuilt": self.rebuilt, "rebuild_reason": self.rebuild_reason, "merged": self.merged,
                "size": self.size, "kind": self.kind, "seconds": round(self.seconds, 3)}


def sync_index(folder: Path, item_ids: np.ndarray, image_ids: np.ndarray, vectors: EmbeddingStore,
               embedder: "Embedder", settings: Settings, *, rebuild: bool, report: IndexReport) -> VectorIndex:
    """Make the index saved in `folder` hold exactly the catalogue's items (`item_ids` with their `image_ids`)
    whose image has a vector: add and remove in place when possible, else rebuild from the stored embeddings.
    Saves it, fills the report's index fields and returns it."""
    keep = vectors.has(image_ids)
    item_ids, image_ids = item_ids[keep], image_ids[keep]
    index = None
    if not rebuild:
        try:
            index = load_index(folder, settings)
        except IndexCorruptError as e:
            report.rebuild_reason = f"{e}; rebuilt from stored embeddings"
    if index is not None and index.dim != embedder.dim:
        index, report.rebuild_reason = None, "model dimension changed"
    if index is not None:
        live = index.contains(item_ids)
        changed = live.copy()
        changed[live] = index.image_of(item_ids[live]) != image_ids[live]
        to_remove = np.concatenate([index.item_ids[~np.isin(index.item_ids, item_ids)], item_ids[changed]])
        add = ~live | changed
        if index.rebuild_required(item_ids[add], to_remove):
            index, report.rebuild_reason = None, report.rebuild_reason or "index kind or tombstones"
        else:
            report.removed = index.remove(to_remove)
            index.add(item_ids[add], image_ids[add], raw_vectors(vectors, image_ids[add], embedder.dim))
            report.added = int(add.sum())
            if isinstance(index, Mergeable) and index.merge_due():
                index.merge()
                report.merged = True
    if index is None:
        index = build_index_batches(len(item_ids), embedder.dim,
                                    lambda: item_batches(vectors, item_ids, image_ids, settings.index_build_batch),
                                    settings, centered=embedder.centered, model=embedder.name)
        report.rebuilt, report.added = True, len(item_ids)
    index.save(folder)
    report.size, report.kind = len(index), index.describe()["float"]
    return index


def raw_vectors(vectors: EmbeddingStore, image_ids: np.ndarray, dim: int) -> np.ndarray:
    """Stored raw vectors aligned with `image_ids` (which may repeat: items can share an image)."""
    if len(image_ids) == 0:
        return np.zeros((0, dim), np.float32)
    return vectors.vectors_of(image_ids)


def item_batches(vectors: EmbeddingStore, item_ids: np.ndarray, image_ids: np.ndarray,
                 batch: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(item ids, image ids, raw vectors) `batch` items at a time, read from the memory-mapped shards."""
    for start in range(0, len(item_ids), max(1, batch)):
        images = image_ids[start:start + batch]
        yield item_ids[start:start + batch], images, vectors.vectors_of(images)
