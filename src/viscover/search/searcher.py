"""One search: filters -> index search (over-fetching) -> duplicate collapse -> items from the catalogue."""

from __future__ import annotations

import numpy as np

from viscover.catalog.item_cache import ItemCache
from viscover.catalog.store import Filters
from viscover.index import Query, VectorIndex
from viscover.search.results import SearchHit, collapse_duplicates


def run_search(store: ItemCache, index: VectorIndex, query: Query, *, k: int, filters: Filters = Filters(),
               binary: bool = False, exclude: np.ndarray | None = None, collapse: bool = True,
               dedup_threshold: float) -> list[SearchHit]:
    """Top-k results for a query. Collapsing may absorb results, so it fetches more until k remain."""
    allowed = store.filter_item_ids(filters) if filters else None
    fetch = k * 3 if collapse else k
    while True:
        hits = index.search(query, fetch, binary=binary, allowed=allowed, excluded=exclude)
        if collapse and len(hits.ids):
            groups = collapse_duplicates(hits.ids, index.image_of(hits.ids), index.stored_floats(hits.ids),
                                         dedup_threshold)
        else:
            groups = [(i, []) for i in range(len(hits.ids))]
        if len(groups) >= k or len(hits.ids) < fetch or fetch >= len(index):
            break
        fetch *= 4
    groups = groups[:k]
    wanted = [int(hits.ids[i]) for i, dups in groups] + [int(hits.ids[d]) for _, dups in groups for d in dups]
    items = store.items_by_ids(wanted)
    out = []
    for i, dups in groups:
        item = items.get(int(hits.ids[i]))
        if item is None:  # deleted from the catalogue since the index was saved
            continue
        out.append(SearchHit(item=item, score=float(hits.scores[i]),
                             duplicates=[items[int(hits.ids[d])] for d in dups if int(hits.ids[d]) in items]))
    return out
