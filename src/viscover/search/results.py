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
    kept: list[tuple[int, list[int]]] = []
    for i, row in enumerate(near.tolist()):  # plain lists: for 60 results, faster than a numpy call per result
        owner = next((group for group in kept if row[group[0]]), None)
        if owner is None:
            kept.append((i, []))
        else:
            owner[1].append(i)
    return kept
