"""What the FAISS-backed indexes (faiss_index, tiered) share around a search: the id selector that keeps allowed,
live items, and best-first hits."""

from __future__ import annotations

import faiss
import numpy as np

from viscover.index.base import Hits


def id_selector(allowed: np.ndarray | None, dead: np.ndarray):
    """A FAISS IDSelector for items in `allowed` (None: all) and not in `dead`; None when nothing is excluded."""
    parts = []
    if allowed is not None:
        parts.append(faiss.IDSelectorBatch(allowed))
    if len(dead):
        parts.append(faiss.IDSelectorNot(faiss.IDSelectorBatch(dead)))
    if not parts:
        return None
    sel = parts[0] if len(parts) == 1 else faiss.IDSelectorAnd(parts[0], parts[1])
    sel._keep = parts  # keep the Python wrappers alive while FAISS holds raw pointers
    return sel


def top_hits(ids: np.ndarray, scores: np.ndarray, k: int) -> Hits:
    """The k best of `ids` by `scores`, best first (ties in the given order)."""
    order = np.argsort(-scores, kind="stable")[:k]
    return Hits(ids[order].astype(np.int64), scores[order].astype(np.float32))


def no_hits() -> Hits:
    return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32))
