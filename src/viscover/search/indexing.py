"""`index`: embed every catalogue image that has no vector for the model yet (resumable: shards are saved as they
fill), then bring the model's saved index up to date with the catalogue."""

from __future__ import annotations

import time

import numpy as np

from viscover.catalog.records import Problem
from viscover.catalog.store import CatalogStore
from viscover.config import Settings
from viscover.embed import Embedder
from viscover.embed.declared import DeclaredModel, model_meta
from viscover.embed.pipeline import ImageJob, embed_images
from viscover.embed.vectors import EmbeddingStore
from viscover.index.base import VectorIndex
from viscover.index.sync import IndexReport, sync_index
from viscover.paths import Home
from viscover.progress import ProgressFactory, no_progress


def index_catalogue(store: CatalogStore, home: Home, settings: Settings, embedder: Embedder, *,
                    rebuild: bool = False, progress: ProgressFactory = no_progress) -> tuple[IndexReport, VectorIndex]:
    """Embed what is new, then sync (or, with `rebuild`, rebuild) the saved index. The caller holds the home's
    write lock. Returns the report and the index as saved. A declared model (vectors imported, no encoder)
    embeds nothing: the index holds the items whose vectors were imported."""
    start = time.perf_counter()
    report = IndexReport(model=embedder.name, key=embedder.key)
    vectors = EmbeddingStore(home.embeddings(embedder.key))
    vectors.write_meta(model_meta(embedder))
    if not isinstance(embedder, DeclaredModel):
        _embed_new(store, vectors, embedder, settings, progress, report)
    item_ids, image_ids = store.item_images()
    index = sync_index(home.index(embedder.key), item_ids, image_ids, vectors, embedder, settings,
                       rebuild=rebuild, report=report)
    report.seconds = time.perf_counter() - start
    return report, index


def _embed_new(store: CatalogStore, vectors: EmbeddingStore, embedder: Embedder, settings: Settings,
               progress: ProgressFactory, report: IndexReport) -> None:
    """Embed the images without a stored vector, appending a shard every `shard_size` vectors; images that fail
    are marked in the catalogue (not retried) and reported."""
    have = vectors.ids()
    todo = [ImageJob(i, uri) for i, uri in store.images_to_embed() if not _in(i, have)]
    ids_buf, vec_buf = [], []
    for batch in embed_images(todo, embedder, settings, progress=progress, description="embed"):
        for image_id, reason in batch.failures:
            store.mark_image_error(image_id, reason)
            report.failed.append(Problem(f"image {image_id}", reason))
        ids_buf.append(batch.ids)
        vec_buf.append(batch.vectors)
        report.embedded += len(batch.ids)
        if sum(len(b) for b in ids_buf) >= settings.shard_size:
            vectors.append(np.concatenate(ids_buf), np.concatenate(vec_buf))
            ids_buf, vec_buf = [], []
    if ids_buf:
        vectors.append(np.concatenate(ids_buf), np.concatenate(vec_buf))
    vectors.compact()


def _in(value: int, sorted_ids: np.ndarray) -> bool:
    pos = np.searchsorted(sorted_ids, value)
    return bool(pos < len(sorted_ids) and sorted_ids[pos] == value)
