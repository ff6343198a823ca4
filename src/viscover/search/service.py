"""The search service of a home: indexing (embed what is new, sync the index), the cached index per model, and
search by image, by item or by an encoded query, with the request checks every search shares."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import numpy as np

from viscover.catalog.browse import item_image
from viscover.catalog.item_cache import ItemCache
from viscover.catalog.store import CatalogStore, Filters
from viscover.config import Settings
from viscover.embed import Embedder, resolve_model
from viscover.embed.declared import DeclaredModel, declare
from viscover.embed.pipeline import ImageJob, decode_pixels, embed_batch
from viscover.embed.vectors import EmbeddingStore
from viscover.errors import BadImageError, BadRequestError, IndexCorruptError, ModelError, NotFoundError, Remedy
from viscover.imaging import CropBox
from viscover.index import Query, VectorIndex, load_index
from viscover.index.cache import IndexCache
from viscover.index.plan import IndexPlan, plan_index
from viscover.index.sync import IndexReport
from viscover.paths import Home
from viscover.progress import ProgressFactory, no_progress
from viscover.search.importing import VectorImportReport, import_vectors
from viscover.search.indexing import index_catalogue
from viscover.search.results import SearchHit
from viscover.search.searcher import run_search


class SearchService:
    """Indexes and searches of one catalogue home. `embedder(model)` gives the (cached) embedder of a model name
    (None: the default model); `lock` guards the index cache (shared with the owner's other caches); `items` reads
    queries and results (default: an ItemCache of the store, so that a warm search by item runs no SQL)."""

    def __init__(self, store: CatalogStore, home: Home, settings: Settings,
                 embedder: Callable[[str | None], Embedder], lock: threading.RLock | None = None,
                 items: ItemCache | None = None):
        self.store, self.home, self.settings, self.embedder = store, home, settings, embedder
        self.items = items if items is not None else ItemCache(store, settings.item_cache_items)
        self.indexes = IndexCache(home, settings, lock)

    # ---- indexes ---------------------------------------------------------------------------------------------
    def index(self, model: str | None = None, *, rebuild: bool = False,
              progress: ProgressFactory = no_progress) -> IndexReport:
        """Embed every image without a vector for this model (resumable), then bring the index up to date. The
        caller holds the home's write lock."""
        embedder = self.embedder(model)
        report, index = index_catalogue(self.store, self.home, self.settings, embedder, rebuild=rebuild,
                                        progress=progress)
        self.indexes.keep(embedder.key, index)
        return report

    def import_vectors(self, path: Path, *, ids: Path | None = None, model: str | None = None,
                       dim: int | None = None, progress: ProgressFactory = no_progress) -> VectorImportReport:
        """Store vectors computed elsewhere for catalogue items (Parquet, or .npy with an ids file); items whose
        vector was replaced leave the model's index (the next `index` adds them back). A model name viscover
        cannot run is declared by its first import, with `dim`. The caller holds the home's write lock."""
        embedder = self._model_to_import(model, dim)
        report = import_vectors(self.store, self.home, self.settings, embedder, Path(path), ids=ids, model=model,
                                progress=progress)
        folder = self.home.index(embedder.key)
        try:
            index = load_index(folder, self.settings) if len(report.replaced_items) else None
        except IndexCorruptError:
            index = None  # the next `index` rebuilds it from the stored embeddings
        if index is not None and index.remove(report.replaced_items):
            index.save(folder)
            self.indexes.keep(embedder.key, index)
        return report

    def _model_to_import(self, model: str | None, dim: int | None) -> Embedder:
        """The embedder of a model viscover can run, else its declaration (made now, given `dim`)."""
        name = model or self.settings.model
        try:
            embedder = self.embedder(model)
        except ModelError:
            try:
                resolve_model(name)
            except ModelError:  # not a name viscover could ever load: a model computed elsewhere
                return declare(self.home, name, dim)
            raise
        if dim is not None and dim != embedder.dim:
            what = "was declared with" if isinstance(embedder, DeclaredModel) else "gives vectors of"
            raise ModelError(f"model {name!r} {what} {embedder.dim} dimensions; its vectors must have "
                             f"{embedder.dim} values, not {dim}")
        return embedder

    def vector_index(self, model: str | None = None) -> VectorIndex:
        """The saved index of a model, loaded once and kept; reloaded when another process saved a newer one."""
        embedder = self.embedder(model)
        return self.indexes.get(embedder.key, embedder.name, model)

    def remove_from_indexes(self, item_ids: np.ndarray) -> None:
        """Remove items from every saved index in place (no rebuild); damaged indexes are left to the next `index`,
        which rebuilds them from the catalogue. The caller holds the home's write lock."""
        root = self.home.index_root
        for folder in sorted(root.iterdir()) if root.is_dir() and len(item_ids) else []:
            try:
                index = load_index(folder, self.settings)
            except IndexCorruptError:
                continue
            if index is not None and index.remove(item_ids):
                index.save(folder)
                self.indexes.keep(folder.name, index)  # swap in the updated copy

    def plan(self, model: str | None = None) -> IndexPlan:
        """The index kind `index` would build for the catalogue's indexable items, by size and memory_budget."""
        embedder = self.embedder(model)
        return plan_index(len(self._indexable(embedder)), embedder.dim, self.settings)

    def unindexed(self, model: str | None = None) -> int:
        """How many catalogue items the model's index lacks (all when it has none or it is damaged): what `index`
        would add, e.g. items of a job killed half-way. Items whose image is known to be undecodable, and items
        without an image whose vector was not imported, never count: `index` could not add them."""
        if self.store.count_items() == 0:  # an empty catalogue: no need to load the model
            return 0
        wanted = self._indexable(self.embedder(model))
        if len(wanted) == 0:
            return 0
        try:
            index = self.vector_index(model)
        except (NotFoundError, IndexCorruptError):
            return len(wanted)
        return int((~index.contains(wanted)).sum())

    def unindexed_anywhere(self, models: dict[str, dict]) -> int:
        """The most items any stored index lacks, from `describe()`'s models (every item when none is stored)."""
        if not models:
            return len(self._indexable())
        return max(m["unindexed"] for m in models.values())

    def _indexable(self, embedder: Embedder | None = None, *, key: str | None = None,
                   can_embed: bool = True) -> np.ndarray:
        """Ids of the items an index of this model should hold: those whose image has a stored vector, and, for a
        model that can embed, those whose image file is not known to be undecodable (items without an image
        need an imported vector). `key`/`can_embed` describe a stored model without loading it."""
        item_ids, image_ids = self.store.item_images()
        if embedder is not None:
            key, can_embed = embedder.key, not isinstance(embedder, DeclaredModel)
        keep = np.zeros(len(item_ids), bool)
        if key is not None and len(item_ids):
            keep |= EmbeddingStore(self.home.embeddings(key)).has(image_ids)
        if can_embed:
            decodable = np.array([i for i, _ in self.store.images_to_embed()], np.int64)
            keep |= np.isin(image_ids, decodable)
        return item_ids[keep]

    def describe(self) -> dict[str, dict]:
        """Per stored model: its embeddings (meta, images embedded), its saved index (or the index's error) and how
        many catalogue items that index lacks."""
        out = {}
        root = self.home.embeddings_root
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            vectors = EmbeddingStore(folder)
            entry = {**vectors.meta(), "embedded_images": int(len(vectors.ids()))}
            index = None
            try:
                index = load_index(self.home.index(folder.name), self.settings)
                entry["index"] = index.describe() if index else None
            except IndexCorruptError as e:
                entry["index"] = {"error": str(e)}
            wanted = self._indexable(key=folder.name, can_embed=not entry.get("declared", False))
            entry["unindexed"] = int((~index.contains(wanted)).sum()) if index is not None else len(wanted)
            out[folder.name] = entry
        return out

    # ---- search ----------------------------------------------------------------------------------------------
    def search_image(self, image: str | Path | bytes, *, crop: CropBox | None = None, k: int | None = None,
                     filters: Filters = Filters(), binary: bool = False, collapse: bool = True,
                     model: str | None = None, name: str = "uploaded image") -> list[SearchHit]:
        """Search by an image file, URL or raw bytes (called `name` in messages), optionally by a crop box of it."""
        index = self.vector_index(model)
        query = index.encode(self.embed_one(image, crop, model, name=name))
        return self.search_query(index, query, k=k, filters=filters, binary=binary, collapse=collapse)

    def search_item(self, key: str, *, crop: CropBox | None = None, k: int | None = None,
                    filters: Filters = Filters(), binary: bool = False, collapse: bool = True,
                    model: str | None = None) -> list[SearchHit]:
        """"More like this" for a catalogue item (or a crop of its image); the item and its copies are excluded."""
        index = self.vector_index(model)
        item = self.items.item(key)
        exclude = self.items.item_ids_with_images([item.image_id])
        if crop is not None:
            query = index.encode(self.embed_one(item_image(self.store, key, self.settings), crop, model,
                                                name=f"item {key!r}"))
        else:
            if not index.contains(np.array([item.id]))[0]:
                raise NotFoundError(f"item {key!r} has no embedding for {index.model} yet",
                                    remedy=Remedy("index", model=model))
            query = index.stored_query(np.array([item.id]))
        return self.search_query(index, query, k=k, filters=filters, binary=binary, collapse=collapse,
                                 exclude=exclude)

    def search_vectors(self, raw: np.ndarray, *, k: int | None = None, filters: Filters = Filters(),
                       binary: bool = False, exclude_item: str | None = None,
                       model: str | None = None) -> list[list[SearchHit]]:
        """One search per row of raw model vectors (e.g. the objects of a scene, embedded in one batch), duplicates
        collapsed; `exclude_item` leaves that item and its copies out of every result list."""
        index = self.vector_index(model)
        exclude = None
        if exclude_item is not None:
            exclude = self.items.item_ids_with_images([self.items.item(exclude_item).image_id])
        queries = index.encode(raw) if len(raw) else None
        return [self.search_query(index, queries[i], k=k, filters=filters, binary=binary, exclude=exclude)
                for i in range(len(raw))]

    def search_query(self, index: VectorIndex, query: Query, *, k: int | None = None, filters: Filters = Filters(),
                     binary: bool = False, collapse: bool = True,
                     exclude: np.ndarray | None = None) -> list[SearchHit]:
        """Search `index` by one encoded query (`index.encode(raw)`), after checking k and the filters."""
        k = self.settings.default_k if k is None else k
        if k < 1:
            raise BadRequestError(f"k={k}: ask for at least one result")
        self.items.check_filters(filters)
        return run_search(self.items, index, query, k=k, filters=filters, binary=binary, exclude=exclude,
                          collapse=collapse, dedup_threshold=self.settings.dedup_threshold)

    def embed_one(self, image: str | Path | bytes, crop: CropBox | None = None,
                  model: str | None = None, *, name: str = "uploaded image") -> np.ndarray:
        """The raw model vector (1, dim) of an image file, URL or bytes (called `name`), or of a crop box of it."""
        embedder = self.embedder(model)
        if isinstance(embedder, DeclaredModel):
            raise embedder.no_encoder()
        if isinstance(image, bytes):
            pixels = decode_pixels(image, embedder.spec, self.settings, name=name, crop=crop)
            return embedder.embed(pixels[None])
        batch = embed_batch([ImageJob(0, str(image), crop)], embedder, self.settings)
        if batch.failures:
            raise BadImageError(batch.failures[0][1])
        return batch.vectors
