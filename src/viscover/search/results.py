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
    n = len(ids)
    if n == 0:
        return []
    # every pair at once (one matrix product), then the greedy pass in rank order over booleans
    near = (image_ids[:, None] == image_ids[None, :]) | ((1.0 - vectors @ vectors.T) < threshold)
    earlier = np.triu(near, 1)  # earlier[j, i]: result j ranks above i and is near it
    kept: list[tuple[int, list[int]]] = []
    group_of: dict[int, tuple[int, list[int]]] = {}  # kept position -> its group
    candidates = {int(i): np.flatnonzero(earlier[:, i]).tolist() for i in np.flatnonzero(earlier.any(axis=0))}
    for i in range(n):  # most results are near nothing above them: no work but keeping them
        owner = next((group_of[j] for j in candidates.get(i, ()) if j in group_of), None)
        if owner is None:
            group_of[i] = (i, [])
            kept.append(group_of[i])
        else:
            owner[1].append(i)
    return kept
