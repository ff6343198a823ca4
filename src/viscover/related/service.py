"""Related items of one catalogue home: the item graph (cached), the related-items service over it (assembled once
per graph, index and ranker), queries by item id, ranker training and engagement logs."""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from viscover.candidates.neighbours import NodeVectorIndex, VisualNeighbours
from viscover.candidates.visual import VisualCandidates
from viscover.catalog.item_cache import ItemCache
from viscover.catalog.store import CatalogStore
from viscover.config import Settings
from viscover.errors import BadRequestError, NotFoundError
from viscover.graph.bipartite import Bipartite, lookup_sorted
from viscover.graph.build import item_attributes
from viscover.graph.cache import GraphCache
from viscover.graph.prune import prune, prune_params_of
from viscover.paths import Home
from viscover.rank.policy import WriteLock, save_if_better
from viscover.rank.ranker import load_ranker
from viscover.related.answers import AnswerCache
from viscover.related.items import RelatedItems
from viscover.related.params import RelatedParams

if TYPE_CHECKING:
    from viscover.catalog.engagement import EngagementReport
    from viscover.catalog.records import Item

log = logging.getLogger("viscover.related")


@dataclass(frozen=True)
class _Assembled:
    """A related-items service and what it was assembled from: the catalogue signature, the index, the model."""

    signature: list[int]
    index: NodeVectorIndex | None
    model: str | None
    items: RelatedItems


@dataclass(slots=True)
class RelatedHit:
    """One related item with its score and why it was proposed (generators and feature values)."""

    item: "Item"
    score: float
    explanation: dict
    query_on_boards: bool = True  # False for a cold query: none of its items is on a board

    @property
    def sources(self) -> list[str]:
        """The generators that proposed this item ("pixie", "co-occurrence", "visual")."""
        return list(self.explanation.get("sources", []))

    @property
    def by_looks_only(self) -> bool:
        """Found by looks alone, as "more like this" would find it: the query is on no board (its walks start from
        its look-alikes), or only the visual generator proposed this item."""
        return not self.query_on_boards or self.sources == [VisualCandidates.name]

    def to_dict(self, explain: bool = False) -> dict:
        """The item's JSON with its score (6 places), and the explanation when asked."""
        out = {"score": round(float(self.score), 6), **self.item.to_dict()}
        if explain:
            out["explanation"] = self.explanation
        return out


class RelatedService:
    """Related items of a catalogue home, for the Engine to delegate to. Thread-safe like the Engine: caches are
    filled under `cache_lock`, walks run side by side (the walker keeps visit buffers per thread), and the home's
    `write_lock` is held only to write (an engagement log, a ranker's save). After a write, queries keep answering
    from the previous service while a background thread builds the new graph and service, then swaps them in: a
    query never waits for a rebuild, unless it names an item the previous graph does not have."""

    def __init__(self, store: CatalogStore, home: Home, settings: Settings,
                 index_for: Callable[[str | None], NodeVectorIndex | None], *, write_lock: WriteLock,
                 cache_lock: AbstractContextManager | None = None,
                 items: ItemCache | None = None):
        """`index_for(model)` gives the model's vector index, None when the catalogue is not indexed yet (related
        items then use graph signals only). `cache_lock` may be the caller's own cache lock (re-entrant); `items`
        reads queries and results (the owner's ItemCache, else one of its own)."""
        self.store, self.home, self.settings, self.index_for = store, home, settings, index_for
        self.items = items if items is not None else ItemCache(store, settings.item_cache_items)
        self._signature: tuple[int, list[int]] | None = None  # (catalogue version, graph signature) last read
        self._write_lock = write_lock
        self._cache_lock = cache_lock if cache_lock is not None else threading.RLock()
        self._graphs = GraphCache(store, home.graph)
        self._items: _Assembled | None = None
        self._generation = 0  # bumped when the kept service must not be swapped back in (a new ranker)
        self._refresher: threading.Thread | None = None
        self._answers = AnswerCache(settings.related_cache_entries)  # repeated queries (answers are seeded)

    # ---- the graph and the service over it --------------------------------------------------------------------
    def graph(self) -> Bipartite:
        """The item-board graph, rebuilt (and saved under the home's graph folder) whenever the catalogue's items
        or boards changed."""
        return self._graphs.get()

    def related_items(self, model: str | None = None, *, wait: bool = True) -> RelatedItems:
        """The related-items service over the current graph, the model's index (if any) and the saved ranker (the
        heuristic without one); assembled again when the graph or the index changed or a new ranker was saved.
        With wait=False a stale service of the same model is returned while a fresh one is assembled off the
        calling thread (the first one is always assembled on it)."""
        signature = self._graph_signature()
        with self._cache_lock:
            index = self.index_for(model)
            kept = self._items
            if kept is not None and kept.model == model and kept.signature == signature and kept.index is index:
                return kept.items
            if not wait and kept is not None and kept.model == model and (kept.index is not None or index is None):
                self._refresh_in_background(model)
                return kept.items
            generation = self._generation
        items = self._assemble(self._graphs.get(signature), index)
        with self._cache_lock:
            if generation == self._generation:
                self._items = _Assembled(signature, index, model, items)
            return items

    def _graph_signature(self) -> list[int]:
        """The catalogue's graph signature, read again only after a commit to the catalogue (it sums every board
        membership: a scan per query, where the change counter costs microseconds)."""
        version = self.store.version()
        kept = self._signature
        if version is not None and kept is not None and kept[0] == version:
            return kept[1]
        signature = self.store.graph_signature()
        if version is not None:
            self._signature = (version, signature)
        return signature

    def _refresh_in_background(self, model: str | None) -> None:
        """Start assembling the service of the catalogue as it is now on a thread of its own, unless one runs.
        The caller holds the cache lock."""
        if self._refresher is not None and self._refresher.is_alive():
            return
        self._refresher = threading.Thread(target=self._refresh, args=(model,), name="viscover-related-refresh",
                                           daemon=True)
        self._refresher.start()

    def _refresh(self, model: str | None) -> None:
        try:
            self.related_items(model, wait=True)
        except Exception:  # the next query tries again; until then the previous service answers
            log.exception("rebuilding the related-items graph failed")

    def wait_refreshed(self, timeout: float | None = None) -> bool:
        """Wait until no background rebuild runs (True), or `timeout` seconds passed (False)."""
        thread = self._refresher
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _assemble(self, graph: Bipartite, index: NodeVectorIndex | None) -> RelatedItems:
        """Prune the graph (when the settings ask and looks are known), read item attributes and image ids, load
        the ranker."""
        visual = None if index is None else VisualNeighbours(graph, index)
        attrs, _, domain_names = item_attributes(self.store, graph)
        prune_params = prune_params_of(self.settings)
        if visual is not None and prune_params.active:
            graph, _ = prune(graph, *visual.unit_vectors(), prune_params)
            visual = VisualNeighbours(graph, visual.index)
        item_ids, image_ids = self.store.item_images()
        image_of = lookup_sorted(item_ids, image_ids, graph.left_ids, -1) if len(item_ids) else None
        items = RelatedItems(graph, visual, attrs, image_of, load_ranker(self.home.ranker),
                             RelatedParams.from_settings(self.settings))
        items.domain_names = domain_names
        return items

    # ---- queries ----------------------------------------------------------------------------------------------
    def related(self, keys: list[str], *, weights: list[float] | None = None, k: int | None = None,
                domain: str | None = None, model: str | None = None, score_by: str = "blend") -> list[RelatedHit]:
        """Items related to one item or a weighted set of items (e.g. a user's recent saves), best first.
        `domain` biases the walks toward items of that domain."""
        if not keys:
            raise BadRequestError("give at least one item id")
        k = self.settings.default_k if k is None else k
        if k < 1:
            raise BadRequestError(f"k={k}: ask for at least one result")
        if weights is not None and len(weights) != len(keys):
            raise BadRequestError(f"{len(weights)} weights for {len(keys)} items; give one weight per item")
        version = self.store.version()  # before reading anything: a commit meanwhile makes this answer unkept
        records = [self.items.item(key) for key in keys]  # NotFoundError names an unknown key
        service = self.related_items(model, wait=False)
        nodes = service.graph.left_index([r.id for r in records])
        if (nodes < 0).any():  # an item newer than the graph answering: only the new graph can
            service = self.related_items(model, wait=True)
            nodes = service.graph.left_index([r.id for r in records])
        graph = service.graph
        want = -1
        if domain is not None:
            names = service.domain_names
            if domain not in names:
                raise NotFoundError(f"no item has domain {domain!r} (domains: {', '.join(n for n in names if n)})")
            want = names.index(domain)
        asked = (tuple(keys), None if weights is None else tuple(weights), k, want, score_by)
        kept = self._answers.get(service, version, asked)
        if kept is not None:
            return kept
        result = service.related(nodes, weights, k=k, want_domain=want, score_by=score_by)
        found = self.items.items_by_ids(graph.left_ids[result.nodes].tolist())
        hits = [RelatedHit(item=found[int(graph.left_ids[n])], score=float(score), explanation=result.explain(i),
                           query_on_boards=not result.cold)
                for i, (n, score) in enumerate(zip(result.nodes, result.scores)) if int(graph.left_ids[n]) in found]
        self._answers.put(service, version, asked, hits)
        return hits

    # ---- engagement and the learned ranker ----------------------------------------------------------------------
    def ingest_engagement(self, log: str | Path) -> "EngagementReport":
        """Add impressions (query item, shown item, position, clicked, saved) from a CSV/JSONL/Parquet log."""
        from viscover.catalog.engagement import ingest_engagement

        with self._write_lock.held():
            return ingest_engagement(self.store, Path(log).expanduser())

    def train_ranker(self, *, from_boards: bool = False, queries: int = 1000, seed: int = 0,
                     model: str | None = None, force: bool = False) -> dict:
        """Learn the related-items ranker from the engagement log (position-debiased), or, with `from_boards`,
        from hidden board memberships of the catalogue itself. It is saved in the home's ranker folder (and used
        from then on) only if it beats the heuristic on held-out queries, unless `force`; the report says which
        ("saved", "not_saved_because")."""
        from viscover.catalog.engagement import engagement_rows
        from viscover.rank.boards import train_board_ranker
        from viscover.rank.ranker import RankParams, train_ranker

        service = self.related_items(model)
        if from_boards:
            ranker, board_report = train_board_ranker(service.graph, service.on_graph, queries=queries, seed=seed)
            out, metric = board_report.to_dict(), "mrr"
        else:
            report = train_ranker(service, service.graph, engagement_rows(self.store), None, RankParams(seed=seed))
            ranker, out, metric = report.ranker, report.to_dict(), "ndcg@10"
        if save_if_better(ranker, out, metric, self.home.ranker, force=force, write_lock=self._write_lock):
            with self._cache_lock:
                self._items = None  # the next query loads the new ranker
                self._generation += 1
        return out
