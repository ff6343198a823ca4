"""The one public Python API: an Engine opened on a catalogue's home folder. The CLI and server are shells over it.

    from viscover import Engine
    engine = Engine("my-home")
    engine.ingest("photos/")                 # folder or manifest (CSV, JSONL, Parquet)
    engine.index()                           # embed what is new, update the vector index
    hits = engine.search_image("query.jpg", k=10)

The Engine opens the home (its store, settings, locks and caches) and is a table of contents of what viscover
does: each section below delegates to the service of one capability (viscover.catalog, viscover.search,
viscover.shop, viscover.related), which does the work.
"""

from __future__ import annotations

import functools
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar

import numpy as np

from viscover.catalog.browse import (BoardSummary, Facets, board_page, boards_page, facets, image_bytes, item_image,
                                    items_page, thumbnail_file)
from viscover.catalog.item_cache import ItemCache
from viscover.catalog.naming import Naming, NamingCache
from viscover.catalog.ingest import IngestReport, ingest_path
from viscover.catalog.records import Item
from viscover.catalog.store import CatalogStore, Filters
from viscover.config import Settings
from viscover.diskspace import disk_full_as_error
from viscover.embed import Embedder, load_embedder, resolve_model
from viscover.embed.declared import declared_key, find_declared
from viscover.errors import BadRequestError, ModelError, NotFoundError, Remedy
from viscover.fsutil import HomeLock
from viscover.imaging import CropBox, download_async
from viscover.index import VectorIndex
from viscover.index.plan import IndexPlan
from viscover.index.sync import IndexReport  # re-exported: `from viscover.engine import IndexReport` keeps working
from viscover.paths import Home
from viscover.progress import ProgressFactory, no_progress
from viscover.search.importing import VectorImportReport
from viscover.search.results import SearchHit
from viscover.search.service import SearchService
from viscover.shop import SceneObjects, ShopService

if TYPE_CHECKING:  # heavy imports (numba, LightGBM, ONNX Runtime's detector) only when those features are used
    from viscover.catalog.engagement import EngagementReport
    from viscover.detect import Detector
    from viscover.graph import Bipartite
    from viscover.graphembed import GraphTrainConfig
    from viscover.related import RelatedHit, RelatedItems, RelatedService

__all__ = ["Engine", "IndexReport", "SceneObjects"]
F = TypeVar("F", bound=Callable)


def _writes(method: F) -> F:
    """An Engine method that writes under the home: a full disk there raises DiskFullError naming the home (not
    an OSError), whichever file the method was writing. (The store turns SQLite's own errors into it.)"""

    @functools.wraps(method)
    def wrapper(self: "Engine", *args, **kwargs):
        with disk_full_as_error(self.home.root):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Engine:
    """A catalogue home folder: its store, embeddings and indexes, and every operation on them.

    Safe for many threads (the HTTP server): caches are filled under one lock, Pixie's walks run side by side (visit
    buffers per thread), and indexes are never changed in place while cached (`index` and `remove` work on
    a fresh copy and swap it in). Writes hold the home's write lock: one writer per home, across processes."""

    def __init__(self, home: str | Path, settings: Settings | None = None, *, db: str | None = None,
                 create: bool = True):
        """Open the catalogue in `home`; with create=False a missing home is an error instead of a new catalogue."""
        self.home = Home(Path(home).expanduser().resolve())
        if not create and not self.home.root.is_dir():
            raise NotFoundError(f"no catalogue at {self.home.root}", remedy=Remedy("create-home", path=str(home)))
        self.settings = settings or Settings.load(self.home.root)
        url = db or self.settings.db or self.home.db_url
        with disk_full_as_error(self.home.root):
            if url.startswith("sqlite"):
                self.home.root.mkdir(parents=True, exist_ok=True)
            self.store = CatalogStore(url, mmap_mb=self.settings.sqlite_mmap_mb)
        self._cache_lock = threading.RLock()
        self._write_lock = HomeLock(self.home.write_lock)
        self._embedders: dict[str, Embedder] = {}
        self._items = ItemCache(self.store, self.settings.item_cache_items)
        self._search = SearchService(self.store, self.home, self.settings, self.embedder, self._cache_lock,
                                     items=self._items)
        self._shop = ShopService(self.settings, self.embedder, self._search.search_vectors, self._cache_lock)
        self._related: "RelatedService | None" = None  # created on first use
        self._naming = NamingCache(self.store)

    def close(self) -> None:
        if self._related is not None:  # a graph rebuild in the background finishes first
            self._related.wait_refreshed()
        self._naming.wait_counted()  # as does a count of the labels that name items
        self.store.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- catalogue (viscover.catalog) -------------------------------------------------------------------------
    @_writes
    def ingest(self, source: str | Path, *, label_from_dirs: str | None = None, domain: str | None = None,
               board: str | None = None, image_roots: Sequence[str | Path] = (),
               progress: ProgressFactory = no_progress) -> IngestReport:
        """Add or update items from a folder or a manifest; bad rows are reported in the result, not raised.
        A manifest's local paths must lie inside its own folder, `image_roots` or the image_roots setting."""
        roots = [image_roots] if isinstance(image_roots, (str, Path)) else list(image_roots)
        with self._write_lock.held():
            try:
                return ingest_path(self.store, Path(source), blob_dir=self.home.images, settings=self.settings,
                                   label_from_dirs=label_from_dirs, domain=domain, board=board, image_roots=roots,
                                   progress=progress)
            finally:
                self._naming.invalidate()

    @_writes
    def remove(self, keys: list[str]) -> list[str]:
        """Delete items from the catalogue and from every saved index (no rebuild); return the unknown keys."""
        with self._write_lock.held():
            # indexes first, then the catalogue: a crash in between leaves items without vectors (the next `index`
            # adds them back), never vectors of deleted items (whose row ids a later ingest may reuse)
            found = self.store.item_ids_of(keys)
            self._search.remove_from_indexes(np.array(sorted(found.values()), np.int64))
            deleted = self.store.delete_items(list(found))
            self._naming.invalidate()
            return [k for k in keys if k not in deleted]

    # ---- catalogue reads (viscover.catalog.browse) ------------------------------------------------------------
    def item(self, key: str) -> Item:
        """One item by its id; NotFoundError names an unknown id."""
        return self._items.item(key)

    def items(self, filters: Filters = Filters(), *, offset: int = 0, limit: int = 50, order: str = "ingest",
              seed: int = 0) -> tuple[list[Item], int]:
        """One page of items matching `filters`, and how many match in all: in catalogue order, or with
        order="mixed" shuffled by `seed` (the same order on every page of one seed); NotFoundError for a filter no
        item can match (an unknown board, task or label)."""
        self.store.check_filters(filters)
        return items_page(self.store, filters, offset, limit, order, seed)

    def item_name(self, item: Item) -> str:
        """What people see an item called: its title, else its most specific label (the value fewest items share,
        unless all do), else its file name (viscover.catalog.naming)."""
        return self._naming.get().name(item)

    def naming(self) -> Naming:
        """The catalogue's current naming (`naming().name(item)` = `item_name(item)`): fetched once to name a page
        or a result list, it checks the catalogue's change counter once instead of once per item."""
        return self._naming.get()

    def facets(self) -> Facets:
        """What the catalogue can be filtered by: domains, labels per task and boards, with their item counts."""
        return facets(self.store)

    def boards(self, *, offset: int = 0, limit: int = 50) -> tuple[list[BoardSummary], int]:
        """One page of boards in natural order of names (size and cover item), and the number of boards."""
        return boards_page(self.store, offset, limit)

    def board_items(self, name: str, *, offset: int = 0, limit: int = 50) -> tuple[list[Item], int]:
        """One page of a board's items, and its size; NotFoundError for an unknown board."""
        return board_page(self.store, name, offset, limit)

    def counts(self) -> dict:
        """Catalogue counts (items, images, labels per task, domains, boards, undecodable images)."""
        return self.store.stats()

    def image_bytes(self, sha256: str) -> tuple[bytes, str]:
        """The bytes and format of an item's image, by content hash: only images items show, only while their
        stored file still holds those bytes, never through a symbolic link."""
        return image_bytes(self.store, sha256, self.settings.max_image_bytes)

    @_writes
    def thumbnail(self, sha256: str, size: int) -> Path:
        """A JPEG thumbnail (longest side `size`, one of THUMBNAIL_SIZES) of an item's image, made once, cached."""
        return thumbnail_file(self.store, sha256, size, self.home.thumbnails, self.settings)

    # ---- models and indexes (viscover.embed, viscover.search) -------------------------------------------------
    def embedder(self, model: str | None = None) -> Embedder:
        """The embedder of a model name (default: the model setting), loaded once; for a model declared by
        importing its vectors (`import_vectors(..., dim=)`), its description, which has no image encoder."""
        requested = model or self.settings.model
        with self._cache_lock:
            if requested in self._embedders:
                return self._embedders[requested]
            found: Embedder | None = find_declared(self.home, requested)
            if found is None:
                name = resolve_model(requested)
                if name not in self._embedders:
                    self._embedders[name] = load_embedder(name, threads=self.settings.inference_threads)
                found = self._embedders[name]
            self._embedders[requested] = found
            return found

    @_writes
    def index(self, model: str | None = None, *, rebuild: bool = False,
              progress: ProgressFactory = no_progress) -> IndexReport:
        """Embed every image without a vector for this model (resumable), then bring the index up to date."""
        with self._write_lock.held():
            return self._search.index(model, rebuild=rebuild, progress=progress)

    def index_plan(self, model: str | None = None) -> IndexPlan:
        """The index kind `index` would build for this catalogue (memory_budget, index_kind), with RAM and disk
        estimates and the reason; nothing is built."""
        return self._search.plan(model)

    @_writes
    def import_vectors(self, path: str | Path, *, ids: str | Path | None = None, model: str | None = None,
                       dim: int | None = None, progress: ProgressFactory = no_progress) -> VectorImportReport:
        """Store embeddings computed elsewhere for catalogue items: a Parquet file (id, vector, optional model) or
        an .npy of vectors with an `ids` file; bad rows are reported in the result, not raised. `index` then
        indexes them without embedding those images. A model viscover cannot run is declared by its first
        import, with `dim` (the vectors' width); it can then index and search by item id, never embed."""
        with self._write_lock.held():
            return self._search.import_vectors(Path(path), ids=None if ids is None else Path(ids), model=model,
                                               dim=dim, progress=progress)

    def unindexed(self, model: str | None = None) -> int:
        """How many catalogue items the model's index lacks (e.g. left by a killed job): `index` adds them."""
        return self._search.unindexed(model)

    def vector_index(self, model: str | None = None) -> VectorIndex:
        """The saved index of a model, loaded once and kept; reloaded when another process saved a newer one."""
        return self._search.vector_index(model)

    def search_is_warm(self, model: str | None = None) -> bool:
        """True when a search by item with this model loads nothing first: its embedder (or declared model) and
        its current index are in memory. The server runs such searches on its event loop (serve/hot.py)."""
        with self._cache_lock:
            embedder = self._embedders.get(model or self.settings.model)
        return embedder is not None and self._search.indexes.is_current(embedder.key)

    # ---- visual search (viscover.search) ----------------------------------------------------------------------
    def search_image(self, image: str | Path | bytes, *, crop: CropBox | None = None, k: int | None = None,
                     filters: Filters = Filters(), binary: bool = False, collapse: bool = True,
                     model: str | None = None, name: str = "uploaded image") -> list[SearchHit]:
        """Search by an image file, URL or raw bytes (called `name` in messages), optionally by a crop box of it."""
        return self._search.search_image(image, crop=crop, k=k, filters=filters, binary=binary, collapse=collapse,
                                         model=model, name=name)

    async def download_image(self, url: str) -> bytes:
        """The bytes of an image URL within the settings' limits (max_image_bytes, the url_timeout deadline, the
        url_allow_hosts guard), waited for without holding a thread: for async servers (then search the bytes)."""
        s = self.settings
        return await download_async(url, max_bytes=s.max_image_bytes, timeout=s.url_timeout,
                                    url_allow_hosts=s.url_allow_hosts)

    def search_item(self, key: str, *, crop: CropBox | None = None, k: int | None = None,
                    filters: Filters = Filters(), binary: bool = False, collapse: bool = True,
                    model: str | None = None) -> list[SearchHit]:
        """"More like this" for a catalogue item (or a crop of its image); the item and its copies are excluded."""
        return self._search.search_item(key, crop=crop, k=k, filters=filters, binary=binary, collapse=collapse,
                                        model=model)

    # ---- objects in scenes (viscover.shop) --------------------------------------------------------------------
    def detector(self) -> "Detector":
        """The object detector of the `detector` setting, loaded once; UnavailableError when none is set."""
        return self._shop.detector()

    def detect(self, image: str | Path | bytes, *, min_score: float | None = None) -> SceneObjects:
        """Objects in an image (file, URL or bytes), boxes in the upright image's pixels: each box is a crop to
        search by ("shop the look")."""
        return self._shop.detect(image, min_score=min_score)

    def detect_item(self, key: str, *, min_score: float | None = None) -> SceneObjects:
        """Objects in a catalogue item's image."""
        return self._shop.detect(item_image(self.store, key, self.settings), min_score=min_score,
                                 name=f"item {key!r}")

    def shop_the_look(self, image: str | Path | bytes, *, k: int | None = None, filters: Filters = Filters(),
                      min_score: float | None = None, max_objects: int = 8, exclude_item: str | None = None,
                      binary: bool = False, model: str | None = None,
                      name: str = "uploaded image") -> SceneObjects:
        """Detect the objects in a scene and search the catalogue for each one by its box (one batch through the
        model); `exclude_item` drops the scene's own item from the results; bytes are called `name` in errors."""
        return self._shop.shop_the_look(image, k=k, filters=filters, min_score=min_score, max_objects=max_objects,
                                        exclude_item=exclude_item, binary=binary, model=model, name=name)

    def shop_the_look_item(self, key: str, **options) -> SceneObjects:
        """Shop the look on a catalogue item's image, the item itself (and its copies) left out of the results."""
        return self.shop_the_look(item_image(self.store, key, self.settings), exclude_item=key,
                                  name=f"item {key!r}", **options)

    # ---- related items (viscover.related) ---------------------------------------------------------------------
    @_writes
    def related(self, keys: list[str], *, weights: list[float] | None = None, k: int | None = None,
                domain: str | None = None, model: str | None = None, score_by: str = "blend") -> list["RelatedHit"]:
        """Items related to one item or a weighted set of items (e.g. a user's recent saves), best first.
        `domain` biases the walks toward items of that domain."""
        return self._related_items().related(keys, weights=weights, k=k, domain=domain, model=model,
                                             score_by=score_by)

    @_writes
    def item_graph(self) -> "Bipartite":
        """The item-board graph, rebuilt (and saved under graph/) whenever the catalogue's items or boards changed."""
        return self._related_items().graph()

    @_writes
    def related_service(self, model: str | None = None) -> "RelatedItems":
        """The related-items service over the current graph, the model's index (if any) and the ranker."""
        return self._related_items().related_items(model)

    @_writes
    def ingest_engagement(self, log: str | Path) -> "EngagementReport":
        """Add impressions (query item, shown item, position, clicked, saved) from a CSV/JSONL/Parquet log."""
        return self._related_items().ingest_engagement(log)

    @_writes
    def train_ranker(self, *, from_boards: bool = False, queries: int = 1000, seed: int = 0,
                     model: str | None = None, force: bool = False) -> dict:
        """Learn the related-items ranker from the engagement log (position-debiased), or, with `from_boards`,
        from hidden board memberships of the catalogue itself. It is saved under <home>/rank (and used from then
        on) only if it beats the heuristic on held-out queries, unless `force`. Returns the report."""
        return self._related_items().train_ranker(from_boards=from_boards, queries=queries, seed=seed, model=model,
                                                  force=force)

    @_writes
    def train_graph(self, *, model: str | None = None, name: str | None = None,
                    config: "GraphTrainConfig | None" = None, resume: bool = False,
                    progress: ProgressFactory = no_progress, log: Callable[[str], None] = lambda _: None) -> dict:
        """Train PinSage graph embeddings on the item-board graph, the base `model`'s stored vectors (default: the
        model setting's; `index` first) as content, and store every item's embedding as the declared model `name`
        (default graph-<base model>, width config.dim) with its own index: `search_item(key, model=name)` then
        finds items by the graph. The checkpoint and report stay in the home's graph-models folder; `resume`
        continues a run there (e.g. with more epochs). Returns the report (items, boards, edges, epochs, seconds,
        per-epoch loss and validation hit-rate, model)."""
        from viscover.graphembed import GraphTrainConfig
        from viscover.related.graph_model import train_catalogue_graph

        config = config or GraphTrainConfig()
        with self._write_lock.held():
            base = self.embedder(model)
            name = name or f"graph-{base.name}"
            self._check_graph_model_name(name, config.dim)
            graph = self._related_items().graph()
            trained = train_catalogue_graph(self.store, self.home, graph, base_key=base.key, base_name=base.name,
                                            name=name, folder=self.home.graph_model(declared_key(name)),
                                            config=config, resume=resume, log=log)
            with tempfile.TemporaryDirectory(prefix="graph-vectors-", dir=self.home.root) as tmp:
                vectors, ids = Path(tmp) / "vectors.npy", Path(tmp) / "ids.npy"
                keys = self._keys_of(trained.item_ids)
                known = np.array([k is not None for k in keys], bool)  # an item deleted meanwhile is left out
                np.save(vectors, trained.vectors[known])
                np.save(ids, np.array([k for k in keys if k is not None], dtype=str))
                imported = self._search.import_vectors(vectors, ids=ids, model=name, dim=config.dim,
                                                       progress=progress)
            indexed = self._search.index(name, progress=progress)
        report = dict(trained.report)
        report["imported"] = imported.imported
        report["indexed"] = indexed.added
        return report

    def _check_graph_model_name(self, name: str, dim: int) -> None:
        """Before training: `name` must not be a model viscover can run (its vectors would be replaced), and a
        graph model declared earlier under it must have the width asked for."""
        try:
            resolve_model(name)
        except ModelError:
            pass
        else:
            raise BadRequestError(f"{name!r} is a model viscover can run; store graph embeddings under a name of "
                                  "their own (e.g. graph-NAME)")
        found = find_declared(self.home, name)
        if found is not None and found.dim != dim:
            raise BadRequestError(f"graph model {name!r} was stored with {found.dim} dimensions, not {dim}; train "
                                  f"it with that width, or under another name")

    def related_by_graph(self, key: str, *, k: int | None = None, name: str | None = None,
                         filters: Filters = Filters()) -> list[SearchHit]:
        """An item's nearest neighbours by its graph embedding (`train_graph`'s model `name`, default
        graph-<model setting>); NotFoundError when no graph model of that name was trained."""
        name = name or f"graph-{self.embedder().name}"
        if find_declared(self.home, name) is None or not self.home.graph_model(declared_key(name)).is_dir():
            raise NotFoundError(f"no graph embeddings {name!r} in this catalogue",
                                remedy=Remedy("train-graph", model=name))
        return self.search_item(key, k=k, filters=filters, model=name)

    def _keys_of(self, item_ids: np.ndarray, batch: int = 10_000) -> list[str | None]:
        """The key of each item row id (None for an unknown one), read `batch` items at a time."""
        keys: list[str | None] = []
        for s in range(0, len(item_ids), batch):
            part = item_ids[s:s + batch].tolist()
            found = self.store.items_by_ids(part)
            keys += [found[i].key if i in found else None for i in part]
        return keys

    def _related_items(self) -> "RelatedService":
        """The related-items service of this home, created on first use (numba and LightGBM load only then)."""
        with self._cache_lock:
            if self._related is None:
                from viscover.related import RelatedService

                self._related = RelatedService(self.store, self.home, self.settings, self._index_or_none,
                                               write_lock=self._write_lock,
                                               cache_lock=self._cache_lock, items=self._items)
            return self._related

    def _index_or_none(self, model: str | None) -> VectorIndex | None:
        """The model's index, None when the catalogue is not indexed yet (related items then use the graph only)."""
        try:
            return self.vector_index(model)
        except NotFoundError:
            return None

    # ---- information ------------------------------------------------------------------------------------------
    def info(self) -> dict:
        """Catalogue counts, stored embeddings per model, saved indexes and the items each lacks (`unindexed`: the
        most any index lacks, all items when nothing is indexed yet)."""
        models = self._search.describe()
        return {"home": str(self.home.root), "database": self.store.safe_url, **self.store.stats(),
                "models": models, "unindexed": self._search.unindexed_anywhere(models),
                "bad_image_examples": [f"{u}: {e}" for u, e in self.store.bad_images(5)]}
