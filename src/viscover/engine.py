"""The one public Python API: an Engine opened on a catalogue's home folder. The CLI and server are shells over it.

    from viscover import Engine
    engine = Engine("my-home")
    engine.ingest("photos/")                 # folder or manifest (CSV, JSONL, Parquet)
    engine.index()                           # embed what is new, update the vector index
    hits = engine.search_image("query.jpg", k=10)
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from viscover.catalog.ingest import IngestReport, ingest
from viscover.catalog.roots import parse_roots
from viscover.catalog.sources import open_source
from viscover.catalog.browse import BoardSummary, board_page, boards_page, catalogue_image, image_file
from viscover.catalog.records import Item
from viscover.catalog.store import CatalogStore, Filters
from viscover.config import Settings
from viscover.embed import Embedder, load_embedder, resolve_model
from viscover.embed.vectors import EmbeddingStore
from viscover.errors import BadImageError, BadRequestError, NotFoundError, Remedy
from viscover.imaging import CropBox
from viscover.imaging.thumbnails import SIZES as THUMBNAIL_SIZES
from viscover.imaging.thumbnails import thumbnail
from viscover.index import IndexCorruptError, VectorIndex, load_index
from viscover.index.sync import IndexReport  # re-exported: `from viscover.engine import IndexReport` keeps working
from viscover.fsutil import HomeLock, atomic_write_bytes
from viscover.paths import Home
from viscover.progress import ProgressFactory, no_progress
from viscover.search.results import SearchHit
from viscover.search.service import SearchService
from viscover.shop import SceneObjects, ShopService

if TYPE_CHECKING:  # heavy imports (numba) only when related items are used
    from viscover.catalog.engagement import EngagementReport
    from viscover.detect import Detector
    from viscover.graph import Bipartite
    from viscover.related.service import RelatedHit, RelatedItems




class Engine:
    """A catalogue home folder: its store, embeddings and indexes, and every operation on them."""

    def __init__(self, home: str | Path, settings: Settings | None = None, *, db: str | None = None,
                 create: bool = True):
        """Open the catalogue in `home`; with create=False a missing home is an error instead of a new catalogue."""
        self.home = Home(Path(home).expanduser().resolve())
        if not create and not self.home.root.is_dir():
            raise NotFoundError(f"no catalogue at {self.home.root}", remedy=Remedy("create-home", path=str(home)))
        self.settings = settings or Settings.load(self.home.root)
        url = db or self.settings.db or self.home.db_url
        if url.startswith("sqlite"):
            self.home.root.mkdir(parents=True, exist_ok=True)
        self.store = CatalogStore(url)
        self._embedders: dict[str, Embedder] = {}
        self._graph = None  # (catalogue signature, Bipartite)
        self._related = None  # (key, RelatedItems)
        # An Engine may serve many threads (the HTTP server): caches are filled under one lock, and Pixie's walker
        # (one reusable visit buffer) runs under another. Indexes are never changed in place while cached:
        # `index` and `remove` work on a fresh copy and swap it in.
        self._cache_lock = threading.RLock()
        self._search_service = SearchService(self.store, self.home, self.settings, self.embedder, self._cache_lock)
        self._walk_lock = threading.Lock()
        self._write_lock = HomeLock(self.home.write_lock)  # one writer per home, across processes
        self._shop = ShopService(self.settings, self.embedder, self._search_service.search_vectors, self._cache_lock)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- catalogue -------------------------------------------------------------------------------------------
    def ingest(self, source: str | Path, *, label_from_dirs: str | None = None, domain: str | None = None,
               board: str | None = None, image_roots: Sequence[str | Path] = (),
               progress: ProgressFactory = no_progress) -> IngestReport:
        """Add or update items from a folder or a manifest; bad rows are reported in the result, not raised.

        A manifest's local paths must lie inside its own folder, `image_roots` or the image_roots setting.
        """
        extra = [image_roots] if isinstance(image_roots, (str, Path)) else list(image_roots)
        roots = [*parse_roots(self.settings.image_roots), *extra]
        src = open_source(Path(source).expanduser(), label_from_dirs=label_from_dirs, domain=domain, board=board,
                          image_roots=roots)
        with self._write_lock.held():
            return ingest(self.store, src, blob_dir=self.home.images, settings=self.settings, progress=progress)

    def remove(self, keys: list[str]) -> list[str]:
        """Delete items from the catalogue and from every saved index (no rebuild); return the unknown keys."""
        with self._write_lock.held():
            return self._remove(keys)

    def _remove(self, keys: list[str]) -> list[str]:
        # indexes first, then the catalogue: a crash in between leaves items without vectors (the next `index`
        # adds them back), never vectors of deleted items (whose row ids a later ingest may reuse)
        found = self.store.item_ids_of(keys)
        self._search_service.remove_from_indexes(np.array(sorted(found.values()), np.int64))
        deleted = self.store.delete_items(list(found))
        return [k for k in keys if k not in deleted]

    # ---- catalogue reads (viscover.catalog.browse) -------------------------------------------------------------
    def item(self, key: str) -> Item:
        """One item by its id; NotFoundError names an unknown id."""
        return self.store.item(key)

    def items(self, filters: Filters = Filters(), *, offset: int = 0, limit: int = 50) -> tuple[list[Item], int]:
        """One page of items (catalogue order) matching `filters`, and how many match in all."""
        return self.store.page_items(filters, offset, limit)

    def boards(self, *, offset: int = 0, limit: int = 50) -> tuple[list[BoardSummary], int]:
        """One page of boards by name (size and cover item), and the number of boards."""
        return boards_page(self.store, offset, limit)

    def board_items(self, name: str, *, offset: int = 0, limit: int = 50) -> tuple[list[Item], int]:
        """One page of a board's items, and its size; NotFoundError for an unknown board."""
        return board_page(self.store, name, offset, limit)

    def counts(self) -> dict:
        """Catalogue counts (items, images, labels per task, domains, boards, undecodable images)."""
        return self.store.stats()

    def image_file(self, sha256: str) -> tuple[Path, str]:
        """The local file and format of an item's image, by content hash (only images items show)."""
        return image_file(self.store, sha256)

    def thumbnail(self, sha256: str, size: int) -> Path:
        """A JPEG thumbnail (longest side `size`, one of THUMBNAIL_SIZES) of an item's image, made once and cached."""
        if size not in THUMBNAIL_SIZES:
            raise BadRequestError(f"thumbnail size {size}: choose one of {', '.join(map(str, THUMBNAIL_SIZES))}")
        uri, _ = catalogue_image(self.store, sha256)
        s = self.settings
        try:
            return thumbnail(uri, sha256, size, self.home.thumbnails, max_pixels=s.max_image_pixels,
                             max_bytes=s.max_image_bytes)
        except BadImageError as e:
            raise NotFoundError(f"image {sha256} cannot be shown: {e}") from None

    # ---- models and indexes ----------------------------------------------------------------------------------
    def embedder(self, model: str | None = None) -> Embedder:
        name = resolve_model(model or self.settings.model)
        with self._cache_lock:
            if name not in self._embedders:
                self._embedders[name] = load_embedder(name, threads=self.settings.inference_threads)
            return self._embedders[name]

    def index(self, model: str | None = None, *, rebuild: bool = False,
              progress: ProgressFactory = no_progress) -> IndexReport:
        """Embed every image without a vector for this model (resumable), then bring the index up to date."""
        with self._write_lock.held():
            return self._search_service.index(model, rebuild=rebuild, progress=progress)

    def vector_index(self, model: str | None = None) -> VectorIndex:
        """The saved index of a model, loaded once and kept; reloaded when another process saved a newer one."""
        return self._search_service.vector_index(model)

    # ---- search ----------------------------------------------------------------------------------------------
    def search_image(self, image: str | Path | bytes, *, crop: CropBox | None = None, k: int | None = None,
                     filters: Filters = Filters(), binary: bool = False, collapse: bool = True,
                     model: str | None = None) -> list[SearchHit]:
        """Search by an image file, URL or raw bytes, optionally by a crop box of it."""
        return self._search_service.search_image(image, crop=crop, k=k, filters=filters, binary=binary,
                                                 collapse=collapse, model=model)

    def search_item(self, key: str, *, crop: CropBox | None = None, k: int | None = None,
                    filters: Filters = Filters(), binary: bool = False, collapse: bool = True,
                    model: str | None = None) -> list[SearchHit]:
        """"More like this" for a catalogue item (or a crop of its image); the item and its copies are excluded."""
        return self._search_service.search_item(key, crop=crop, k=k, filters=filters, binary=binary,
                                                collapse=collapse, model=model)

    # ---- objects in scenes (viscover.shop) ------------------------------------------------------------------
    def detector(self) -> "Detector":
        """The object detector of the `detector` setting, loaded once; UnavailableError when none is set."""
        return self._shop.detector()

    def detect(self, image: str | Path | bytes, *, min_score: float | None = None) -> SceneObjects:
        """Objects in an image (file, URL or bytes), boxes in the upright image's pixels: each box is a crop to
        search by ("shop the look")."""
        return self._shop.detect(image, min_score=min_score)

    def detect_item(self, key: str, *, min_score: float | None = None) -> SceneObjects:
        """Objects in a catalogue item's image."""
        return self._shop.detect(self.store.item(key).uri, min_score=min_score)

    def shop_the_look(self, image: str | Path | bytes, *, k: int | None = None, filters: Filters = Filters(),
                      min_score: float | None = None, max_objects: int = 8, exclude_item: str | None = None,
                      binary: bool = False, model: str | None = None) -> SceneObjects:
        """Detect the objects in a scene and search the catalogue for each one by its box (one batch through the
        model); `exclude_item` drops the scene's own item from the results."""
        return self._shop.shop_the_look(image, k=k, filters=filters, min_score=min_score, max_objects=max_objects,
                                        exclude_item=exclude_item, binary=binary, model=model)

    def shop_the_look_item(self, key: str, **options) -> SceneObjects:
        """Shop the look on a catalogue item's image, the item itself (and its copies) left out of the results."""
        return self.shop_the_look(self.store.item(key).uri, exclude_item=key, **options)

    # ---- related items ---------------------------------------------------------------------------------------
    def item_graph(self) -> "Bipartite":
        """The item-board graph, rebuilt (and saved under graph/) whenever the catalogue's items or boards changed."""
        with self._cache_lock:
            return self._item_graph()

    def _item_graph(self) -> "Bipartite":
        from viscover.graph import Bipartite
        from viscover.graph.build import item_board_graph

        signature = self.store.graph_signature()
        if self._graph is not None and self._graph[0] == signature:
            return self._graph[1]
        folder = self.home.root / "graph"
        path, meta = folder / "item-board.npz", folder / "item-board.json"
        graph = None
        if path.is_file() and meta.is_file():
            try:
                if json.loads(meta.read_text()).get("signature") == signature:
                    graph = Bipartite.load(path)
            except (OSError, ValueError):
                graph = None  # damaged: rebuilt below from the catalogue
        if graph is None:
            graph, _ = item_board_graph(self.store)
            graph.save(path)
            atomic_write_bytes(meta, json.dumps({"signature": signature, "items": graph.n_left,
                                                 "boards": graph.n_right, "edges": graph.n_edges}).encode())
        self._graph = (signature, graph)
        self._related = None
        return graph

    def related_service(self, model: str | None = None) -> "RelatedItems":
        """The related-items service over the current graph, the model's index (if any) and the ranker (if any)."""
        with self._cache_lock:
            return self._related_service(model)

    def _related_service(self, model: str | None) -> "RelatedItems":
        from viscover.graph.bipartite import lookup_sorted
        from viscover.graph.build import item_attributes
        from viscover.graph.prune import prune, prune_params_of
        from viscover.rank.ranker import load_ranker
        from viscover.related.pixie import PixieParams
        from viscover.related.service import RelatedItems, RelatedParams, VisualNeighbours

        graph = self.item_graph()
        try:
            index = self.vector_index(model)
        except NotFoundError:
            index = None  # not indexed yet: graph signals only
        key = (id(graph), id(index), model)
        if self._related is not None and self._related[0] == key:
            return self._related[1]
        visual = None if index is None else VisualNeighbours(graph, index)
        attrs, _, domain_names = item_attributes(self.store, graph)
        prune_params = prune_params_of(self.settings)
        if visual is not None and prune_params.active:
            graph, _ = prune(graph, *visual.unit_vectors(), prune_params)
            visual = VisualNeighbours(graph, visual.index)
        item_ids, image_ids = self.store.item_images()
        image_of = lookup_sorted(item_ids, image_ids, graph.left_ids, -1) if len(item_ids) else None
        s = self.settings
        params = RelatedParams(pixie=PixieParams(steps=s.pixie_steps, alpha=s.pixie_alpha, n_p=s.pixie_np,
                                                 n_v=s.pixie_nv, bias=s.pixie_bias),
                               dedup_threshold=s.dedup_threshold)
        service = RelatedItems(graph, visual, attrs, image_of, load_ranker(self.home.root / "rank"), params)
        service.domain_names = domain_names
        self._related = (key, service)
        return service

    def related(self, keys: list[str], *, weights: list[float] | None = None, k: int | None = None,
                domain: str | None = None, model: str | None = None, score_by: str = "blend") -> list["RelatedHit"]:
        """Items related to one item or a weighted set of items (e.g. a user's recent saves), best first.
        `domain` biases the walks toward items of that domain."""
        from viscover.related.service import RelatedHit

        if not keys:
            raise BadRequestError("give at least one item id")
        k = self.settings.default_k if k is None else k
        if k < 1:
            raise BadRequestError(f"k={k}: ask for at least one result")
        if weights is not None and len(weights) != len(keys):
            raise BadRequestError(f"{len(weights)} weights for {len(keys)} items; give one weight per item")
        items = [self.store.item(key) for key in keys]  # NotFoundError names an unknown key
        service = self.related_service(model)
        graph = service.graph
        nodes = graph.left_index([i.id for i in items])
        want = -1
        if domain is not None:
            names = service.domain_names
            if domain not in names:
                raise NotFoundError(f"no item has domain {domain!r} (domains: {', '.join(n for n in names if n)})")
            want = names.index(domain)
        with self._walk_lock:
            result = service.related(nodes, weights, k=k, want_domain=want, score_by=score_by)
        found = self.store.items_by_ids(graph.left_ids[result.nodes].tolist())
        return [RelatedHit(item=found[int(graph.left_ids[n])], score=float(score), explanation=result.explain(i))
                for i, (n, score) in enumerate(zip(result.nodes, result.scores)) if int(graph.left_ids[n]) in found]

    def ingest_engagement(self, log: str | Path) -> "EngagementReport":
        """Add impressions (query item, shown item, position, clicked, saved) from a CSV/JSONL/Parquet log."""
        from viscover.catalog.engagement import ingest_engagement

        with self._write_lock.held():
            return ingest_engagement(self.store, Path(log).expanduser())

    def train_ranker(self, *, from_boards: bool = False, queries: int = 1000, seed: int = 0,
                     model: str | None = None, force: bool = False) -> dict:
        """Learn the related-items ranker from the engagement log (position-debiased), or, with `from_boards`,
        from hidden board memberships of the catalogue itself. It is saved under <home>/rank (and used from then
        on) only if it beats the heuristic on held-out queries, unless `force`. Returns the report."""
        from viscover.catalog.engagement import engagement_rows
        from viscover.rank.ranker import RankParams, train_ranker
        from viscover.related.service import RelatedItems

        folder = self.home.root / "rank"
        service = self.related_service(model)
        if from_boards:
            from viscover.rank.boards import train_board_ranker

            def make_service(graph):
                visual = None if service.visual is None else type(service.visual)(graph, service.visual.index)
                return RelatedItems(graph, visual, service.attrs, service.image_of, None, service.params)

            ranker, report = train_board_ranker(service.graph, make_service, queries=queries, seed=seed)
            out, metric = report.to_dict(), "mrr"
        else:
            report = train_ranker(service, service.graph, engagement_rows(self.store), None, RankParams(seed=seed))
            ranker, out, metric = report.ranker, report.to_dict(), "ndcg@10"
        learned = (out.get("metrics") or {}).get("learned", {}).get(metric)
        heuristic = (out.get("metrics") or {}).get("heuristic", {}).get(metric)
        better = learned is None or heuristic is None or learned >= heuristic
        out["saved"] = bool(better or force)
        if out["saved"]:
            with self._write_lock.held():  # training above needs no lock: only the save is a write
                ranker.save(folder)
            self._related = None  # the next query loads the new ranker
        else:
            out["not_saved_because"] = (f"held-out {metric} {learned:.4f} is below the heuristic's {heuristic:.4f}; "
                                        "related items keep the heuristic (use --force to save it anyway)")
        return out

    # ---- information -----------------------------------------------------------------------------------------
    def info(self) -> dict:
        """Catalogue counts, stored embeddings per model and saved indexes."""
        out = {"home": str(self.home.root), "database": self.store.safe_url, **self.store.stats(), "models": {}}
        root = self.home.root / "embeddings"
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            store = EmbeddingStore(folder)
            entry = {**store.meta(), "embedded_images": int(len(store.ids()))}
            try:
                index = load_index(self.home.index(folder.name), self.settings)
                entry["index"] = index.describe() if index else None
            except IndexCorruptError as e:
                entry["index"] = {"error": str(e)}
            out["models"][folder.name] = entry
        out["bad_image_examples"] = [f"{u}: {e}" for u, e in self.store.bad_images(5)]
        return out

