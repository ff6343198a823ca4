"""Turning raw index hits into results: near-duplicate collapsing and item metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from viscover.catalog.records import Item


@dataclass
class SearchHit:
    """One result: the item, its cosine similarity to the query, and near-duplicates folded into it."""

    item: Item
    score: float
    duplicates: list[Item] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"score": round(float(self.score), 6), **self.item.to_dict(),
                "duplicates": [d.key for d in self.duplicates]}


def collapse_duplicates(ids: np.ndarray, image_ids: np.ndarray, vectors: np.ndarray,
                        threshold: float) -> list[tuple[int, list[int]]]:
    """Group ranked results: each kept result absorbs later ones showing the same image or lying within cosine
    distance `threshold` of it. Returns (kept position, [absorbed positions]) in rank order."""
    kept: list[tuple[int, list[int]]] = []
    kept_pos: list[int] = []
    for i in range(len(ids)):
        owner = None
        if kept_pos:
            same_image = image_ids[kept_pos] == image_ids[i]
            close = (1.0 - vectors[kept_pos] @ vectors[i]) < threshold
            match = np.nonzero(same_image | close)[0]
            if len(match):
                owner = int(match[0])
        if owner is None:
            kept.append((i, []))
            kept_pos.append(i)
        else:
            kept[owner][1].append(i)
    return kept
