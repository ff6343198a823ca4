"""The one public Python API: an Engine opened on a catalogue's home folder. The CLI and server are shells over it.

    from viscover import Engine
    engine = Engine("my-home")
    engine.ingest("photos/")                 # folder or manifest (CSV, JSONL, Parquet)
    engine.index()                           # embed what is new, update the vector index
    hits = engine.search_image("query.jpg", k=10)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from viscover.catalog.ingest import IngestReport, ingest
from viscover.catalog.records import Problem
from viscover.catalog.roots import parse_roots
from viscover.catalog.sources import open_source
from viscover.catalog.store import CatalogStore, Filters
from viscover.config import Settings
from viscover.embed import Embedder, load_embedder, resolve_model
from viscover.embed.pipeline import ImageJob, decode_pixels, embed_batch, embed_images
from viscover.embed.vectors import EmbeddingStore
from viscover.errors import BadImageError, BadRequestError, NotFoundError, UnavailableError
from viscover.imaging import CropBox, decode_image, read_image_bytes
from viscover.index import Codec, IndexCorruptError, VectorIndex
from viscover.index.faiss_index import MANIFEST as INDEX_MANIFEST
from viscover.fsutil import HomeLock
from viscover.paths import Home
from viscover.progress import ProgressFactory, no_progress
from viscover.search.results import SearchHit
from viscover.search.searcher import run_search

if TYPE_CHECKING:  # heavy imports (numba) only when related items are used
    from viscover.catalog.engagement import EngagementReport
    from viscover.detect import Detection, Detector
    from viscover.graph import Bipartite
    from viscover.related import RelatedHit, RelatedItems, RelatedService


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
    size: int = 0
    kind: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"model": self.model, "key": self.key, "embedded": self.embedded, "failed": len(self.failed),
                "problems": [str(p) for p in self.failed], "added": self.added, "removed": self.removed,
                "rebuilt": self.rebuilt, "rebuild_reason": self.rebuild_reason, "size": self.size,
                "kind": self.kind, "seconds": round(self.seconds, 3)}


@dataclass
class SceneObjects:
    """Objects detected in one image, with the image's upright size."""

    width: int
    height: int
    objects: list["Detection"]
    data: bytes = field(default=b"", repr=False)  # the image's bytes, to crop each object from
    hits: list[list[SearchHit]] = field(default_factory=list)  # per object, with shop_the_look


class Engine:
    """A catalogue home folder: its store, embeddings and indexes, and every operation on them."""

    def __init__(self, home: str | Path, settings: Settings | None = None, *, db: str | None = None,
                 create: bool = True):
        """Open the catalogue in `home`; with create=False a missing home is an error instead of a new catalogue."""
        self.home = Home(Path(home).expanduser().resolve())
        if not create and not self.home.root.is_dir():
            raise NotFoundError(f"no catalogue at {self.home.root}; create one with `viscover ingest SOURCE "
                                f"--home {home}` or point --home (or VISCOVER_HOME) at an existing one")
        self.settings = settings or Settings.load(self.home.root)
        url = db or self.settings.db or self.home.db_url
        if url.startswith("sqlite"):
            self.home.root.mkdir(parents=True, exist_ok=True)
        self.store = CatalogStore(url)
        self._embedders: dict[str, Embedder] = {}
        self._indexes: dict[str, VectorIndex] = {}
        self._index_stamps: dict[str, tuple[int, int] | None] = {}
        self._graph = None  # (catalogue signature, Bipartite)
        self._related = None  # (key, RelatedItems)
        # An Engine may serve many threads (the HTTP server): caches are filled under one lock, and Pixie's walker
        # (one reusable visit buffer) runs under another. Indexes are never changed in place while cached:
        # `index` and `remove` work on a fresh copy and swap it in.
        self._cache_lock = threading.RLock()
        self._walk_lock = threading.Lock()
        self._detector = None
        self._write_lock = HomeLock(self.home.root / ".write.lock")  # one writer per home, across processes

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
        ids = np.array(sorted(found.values()), np.int64)
        root = self.home.root / "index"
        for folder in sorted(root.iterdir()) if root.is_dir() and len(ids) else []:
            try:
                index = VectorIndex.load(folder, self.settings)
            except IndexCorruptError:
                continue  # rebuilt from the catalogue by the next `index`
            if index is not None and index.remove(ids):
                index.save(folder)
                self._keep_index(folder.name, index)  # swap in the updated copy
        deleted = self.store.delete_items(list(found))
        return [k for k in keys if k not in deleted]

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
            return self._index(model, rebuild=rebuild, progress=progress)

    def _index(self, model: str | None, *, rebuild: bool, progress: ProgressFactory) -> IndexReport:
        start = time.perf_counter()
        embedder = self.embedder(model)
        report = IndexReport(model=embedder.name, key=embedder.key)
        vectors = EmbeddingStore(self.home.embeddings(embedder.key))
        vectors.write_meta({"model": embedder.name, "key": embedder.key, "dim": embedder.dim})
        have = vectors.ids()
        todo = [ImageJob(i, uri) for i, uri in self.store.images_to_embed() if not _in(i, have)]
        ids_buf, vec_buf = [], []
        for batch in embed_images(todo, embedder, self.settings, progress=progress, description="embed"):
            for image_id, reason in batch.failures:
                self.store.mark_image_error(image_id, reason)
                report.failed.append(Problem(f"image {image_id}", reason))
            ids_buf.append(batch.ids)
            vec_buf.append(batch.vectors)
            report.embedded += len(batch.ids)
            if sum(len(b) for b in ids_buf) >= self.settings.shard_size:
                vectors.append(np.concatenate(ids_buf), np.concatenate(vec_buf))
                ids_buf, vec_buf = [], []
        if ids_buf:
            vectors.append(np.concatenate(ids_buf), np.concatenate(vec_buf))
        vectors.compact()
        self._sync_index(embedder, vectors, rebuild, report)
        report.seconds = time.perf_counter() - start
        return report

    def _sync_index(self, embedder: Embedder, vectors: EmbeddingStore, rebuild: bool, report: IndexReport) -> None:
        """Make the saved index hold exactly the items whose image has a vector: add and remove in place when
        possible, else rebuild from the stored embeddings."""
        folder = self.home.index(embedder.key)
        item_ids, image_ids = self.store.item_images()
        keep = np.isin(image_ids, vectors.ids())
        item_ids, image_ids = item_ids[keep], image_ids[keep]
        index = None
        if not rebuild:
            try:
                index = VectorIndex.load(folder, self.settings)
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
            if index.blocks_add(item_ids[add]) or index.needs_rebuild(len(item_ids), removing=len(to_remove)):
                index, report.rebuild_reason = None, report.rebuild_reason or "index kind or tombstones"
            else:
                report.removed = index.remove(to_remove)
                index.add(item_ids[add], image_ids[add], _raw_vectors(vectors, image_ids[add], embedder.dim))
                report.added = int(add.sum())
        if index is None:
            codec = Codec.identity(embedder.dim) if embedder.centered else None
            index = VectorIndex.build(item_ids, image_ids, _raw_vectors(vectors, image_ids, embedder.dim),
                                      self.settings, codec=codec, model=embedder.name)
            report.rebuilt, report.added = True, len(item_ids)
        index.save(folder)
        self._keep_index(embedder.key, index)
        report.size, report.kind = len(index), index.describe()["float"]

    def vector_index(self, model: str | None = None) -> VectorIndex:
        """The saved index of a model, loaded once and kept; reloaded when another process saved a newer one."""
        embedder = self.embedder(model)
        with self._cache_lock:
            return self._cached_index(embedder, model)

    def _cached_index(self, embedder: Embedder, model: str | None) -> VectorIndex:
        stamp = _stamp(self.home.index(embedder.key) / INDEX_MANIFEST)
        if self._index_stamps.get(embedder.key) != stamp:
            self._indexes.pop(embedder.key, None)
        if embedder.key not in self._indexes:
            try:
                index = VectorIndex.load(self.home.index(embedder.key), self.settings)
            except IndexCorruptError as e:
                raise IndexCorruptError(f"{e}; run `viscover index` to rebuild it from the stored embeddings") from None
            if index is None:
                raise NotFoundError(f"no index for model {embedder.name} in {self.home.root}; run `viscover index`"
                                    + (f" --model {model}" if model else ""))
            self._keep_index(embedder.key, index)
        return self._indexes[embedder.key]

    def _keep_index(self, key: str, index: VectorIndex) -> None:
        """Cache an index just loaded or saved, with the stamp of its manifest file to notice newer saves."""
        self._indexes[key] = index
        self._index_stamps[key] = _stamp(self.home.index(key) / INDEX_MANIFEST)

    # ---- search ----------------------------------------------------------------------------------------------
    def search_image(self, image: str | Path | bytes, *, crop: CropBox | None = None, k: int | None = None,
                     filters: Filters = Filters(), binary: bool = False, collapse: bool = True,
                     model: str | None = None) -> list[SearchHit]:
        """Search by an image file, URL or raw bytes, optionally by a crop box of it."""
        index = self.vector_index(model)
        raw = self._embed_one(image, crop, model)
        return self._search(index, index.codec.floats(raw), index.codec.bits(raw), k, filters, binary, collapse,
                            exclude=None)

    def search_item(self, key: str, *, crop: CropBox | None = None, k: int | None = None,
                    filters: Filters = Filters(), binary: bool = False, collapse: bool = True,
                    model: str | None = None) -> list[SearchHit]:
        """"More like this" for a catalogue item (or a crop of its image); the item and its copies are excluded."""
        index = self.vector_index(model)
        item = self.store.item(key)
        exclude = self.store.item_ids_with_images([item.image_id])
        if crop is not None:
            raw = self._embed_one(item.uri, crop, model)
            floats, bits = index.codec.floats(raw), index.codec.bits(raw)
        else:
            if not index.contains(np.array([item.id]))[0]:
                raise NotFoundError(f"item {key!r} has no embedding for {index.model} yet; run `viscover index`")
            floats = index.stored_floats(np.array([item.id]))
            bits = index.stored_bits(np.array([item.id]))
        return self._search(index, floats, bits, k, filters, binary, collapse, exclude=exclude)

    def _embed_one(self, image: str | Path | bytes, crop: CropBox | None, model: str | None) -> np.ndarray:
        embedder = self.embedder(model)
        if isinstance(image, bytes):
            pixels = decode_pixels(image, embedder.spec, self.settings, name="uploaded image", crop=crop)
            return embedder.embed(pixels[None])
        batch = embed_batch([ImageJob(0, str(image), crop)], embedder, self.settings)
        if batch.failures:
            raise BadImageError(batch.failures[0][1])
        return batch.vectors

    def _search(self, index: VectorIndex, floats, bits, k, filters, binary, collapse, exclude) -> list[SearchHit]:
        k = self.settings.default_k if k is None else k
        if k < 1:
            raise BadRequestError(f"k={k}: ask for at least one result")
        if filters.board is not None and not self.store.board_exists(filters.board):
            raise NotFoundError(f"unknown board {filters.board!r}")
        for task, _ in filters.labels:
            if not self.store.task_exists(task):
                raise NotFoundError(f"no item has a label for task {task!r}")
        return run_search(self.store, index, floats, bits, k=k, filters=filters, binary=binary, exclude=exclude,
                          collapse=collapse, dedup_threshold=self.settings.dedup_threshold)

    # ---- objects in scenes ----------------------------------------------------------------------------------
    def detector(self) -> "Detector":
        """The object detector of the `detector` setting, loaded once; UnavailableError when none is set."""
        from viscover.detect import load_detector

        if not self.settings.detector:
            raise UnavailableError("object detection is off: set the detector setting (VISCOVER_DETECTOR or "
                                   "viscover.toml) to a CenterNet ONNX file")
        with self._cache_lock:
            if self._detector is None:
                self._detector = load_detector(self.settings.detector, threads=self.settings.inference_threads)
            return self._detector

    def detect(self, image: str | Path | bytes, *, min_score: float | None = None) -> "SceneObjects":
        """Objects in an image (file, URL or bytes), boxes in the upright image's pixels: each box is a crop to
        search by ("shop the look")."""
        detector = self.detector()
        data = image if isinstance(image, bytes) else read_image_bytes(image, max_bytes=self.settings.max_image_bytes,
                                                                       timeout=self.settings.url_timeout,
                                                                       url_allow_hosts=self.settings.url_allow_hosts)
        name = "uploaded image" if isinstance(image, bytes) else str(image)
        img = decode_image(data, max_pixels=self.settings.max_image_pixels, name=name)
        score = self.settings.detect_min_score if min_score is None else min_score
        return SceneObjects(img.width, img.height, detector.detect(img, min_score=score), data)

    def shop_the_look(self, image: str | Path | bytes, *, k: int | None = None, filters: Filters = Filters(),
                      min_score: float | None = None, max_objects: int = 8, exclude_item: str | None = None,
                      binary: bool = False, model: str | None = None) -> "SceneObjects":
        """Detect the objects in a scene and search the catalogue for each one by its box (one batch through the
        model); `exclude_item` drops the scene's own item from the results."""
        scene = self.detect(image, min_score=min_score)
        scene.objects = scene.objects[:max_objects]
        index = self.vector_index(model)
        embedder = self.embedder(model)
        exclude = None
        if exclude_item is not None:
            exclude = self.store.item_ids_with_images([self.store.item(exclude_item).image_id])
        if scene.objects:
            pixels = np.stack([decode_pixels(scene.data, embedder.spec, self.settings, name="scene", crop=o.box)
                               for o in scene.objects])
            raw = np.asarray(embedder.embed(pixels), np.float32)
            scene.hits = [self._search(index, index.codec.floats(raw[i:i + 1]), index.codec.bits(raw[i:i + 1]), k,
                                       filters, binary, True, exclude=exclude) for i in range(len(scene.objects))]
        return scene

    # ---- related items ---------------------------------------------------------------------------------------
    def item_graph(self) -> "Bipartite":
        """The item-board graph, rebuilt (and saved under graph/) whenever the catalogue's items or boards changed."""
        return self._related_items().graph()

    def related_service(self, model: str | None = None) -> "RelatedItems":
        """The related-items service over the current graph, the model's index (if any) and the ranker."""
        return self._related_items().related_items(model)

    def related(self, keys: list[str], *, weights: list[float] | None = None, k: int | None = None,
                domain: str | None = None, model: str | None = None, score_by: str = "blend") -> list["RelatedHit"]:
        """Items related to one item or a weighted set of items (e.g. a user's recent saves), best first.
        `domain` biases the walks toward items of that domain."""
        return self._related_items().related(keys, weights=weights, k=k, domain=domain, model=model,
                                             score_by=score_by)

    def ingest_engagement(self, log: str | Path) -> "EngagementReport":
        """Add impressions (query item, shown item, position, clicked, saved) from a CSV/JSONL/Parquet log."""
        return self._related_items().ingest_engagement(log)

    def train_ranker(self, *, from_boards: bool = False, queries: int = 1000, seed: int = 0,
                     model: str | None = None, force: bool = False) -> dict:
        """Learn the related-items ranker from the engagement log (position-debiased), or, with `from_boards`,
        from hidden board memberships of the catalogue itself. It is saved under <home>/rank (and used from then
        on) only if it beats the heuristic on held-out queries, unless `force`. Returns the report."""
        return self._related_items().train_ranker(from_boards=from_boards, queries=queries, seed=seed, model=model,
                                                  force=force)

    def _related_items(self) -> "RelatedService":
        """The related-items part of this engine, created on first use (numba and LightGBM load only then)."""
        with self._cache_lock:
            if self._related is None:
                from viscover.related import RelatedService

                self._related = RelatedService(self.store, self.home, self.settings, self._index_or_none,
                                               write_lock=self._write_lock, walk_lock=self._walk_lock,
                                               cache_lock=self._cache_lock)
            return self._related

    def _index_or_none(self, model: str | None) -> VectorIndex | None:
        """The model's index, None when the catalogue is not indexed yet (related items then use the graph only)."""
        try:
            return self.vector_index(model)
        except NotFoundError:
            return None

    # ---- information -----------------------------------------------------------------------------------------
    def info(self) -> dict:
        """Catalogue counts, stored embeddings per model and saved indexes."""
        out = {"home": str(self.home.root), "database": self.store.safe_url, **self.store.stats(), "models": {}}
        root = self.home.root / "embeddings"
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            store = EmbeddingStore(folder)
            entry = {**store.meta(), "embedded_images": int(len(store.ids()))}
            try:
                index = VectorIndex.load(self.home.index(folder.name), self.settings)
                entry["index"] = index.describe() if index else None
            except IndexCorruptError as e:
                entry["index"] = {"error": str(e)}
            out["models"][folder.name] = entry
        out["bad_image_examples"] = [f"{u}: {e}" for u, e in self.store.bad_images(5)]
        return out


def _stamp(path: Path) -> tuple[int, int] | None:
    """(mtime in ns, inode) of a file, None if absent: changes whenever the file is atomically replaced."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ino


def _in(value: int, sorted_ids: np.ndarray) -> bool:
    pos = np.searchsorted(sorted_ids, value)
    return bool(pos < len(sorted_ids) and sorted_ids[pos] == value)


def _raw_vectors(vectors: EmbeddingStore, image_ids: np.ndarray, dim: int) -> np.ndarray:
    """Stored raw vectors aligned with `image_ids` (which may repeat: items can share an image)."""
    if len(image_ids) == 0:
        return np.zeros((0, dim), np.float32)
    ids, raw = vectors.load(np.unique(image_ids))
    return raw[np.searchsorted(ids, image_ids)]
