"""Batch embedding: worker processes each read, decode and embed whole batches, so decoding on one core overlaps
inference on the other; the parent only collects vectors. Small jobs run in-process (no start-up cost)."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from viscover.config import Settings
from viscover.embed.base import Embedder, InputSpec, to_pixels
from viscover.embed.registry import load_embedder
from viscover.errors import BadImageError
from viscover.imaging import CropBox, decode_image, read_image_bytes
from viscover.progress import ProgressFactory, no_progress


@dataclass(frozen=True)
class ImageJob:
    """One image to embed: a caller's id for it, where to read it, an optional crop, and an optional seed for a
    random training augmentation (see `viscover.imaging.augment`)."""

    id: int
    uri: str
    crop: CropBox | None = None
    augment_seed: int | None = None


@dataclass
class EmbedBatch:
    """Vectors for the jobs that worked and (id, reason) for those that did not."""

    ids: np.ndarray
    vectors: np.ndarray
    failures: list[tuple[int, str]] = field(default_factory=list)


def load_pixels(job: ImageJob, spec: InputSpec, settings: Settings) -> np.ndarray:
    """Read, decode and shape one job's image for a model with input convention `spec`."""
    data = read_image_bytes(job.uri, max_bytes=settings.max_image_bytes, timeout=settings.url_timeout,
                            url_allow_hosts=settings.url_allow_hosts)
    return decode_pixels(data, spec, settings, name=job.uri, crop=job.crop, augment_seed=job.augment_seed)


def decode_pixels(data: bytes, spec: InputSpec, settings: Settings, *, name: str,
                  crop: CropBox | None = None, augment_seed: int | None = None) -> np.ndarray:
    """Image bytes -> (size, size, 3) uint8 pixels for the model (JPEGs decoded at reduced scale when possible)."""
    img = decode_image(data, max_pixels=settings.max_image_pixels, name=name, crop=crop,
                       min_size=spec.resize if augment_seed is None else None)
    if augment_seed is not None:
        from viscover.imaging.augment import augment

        img = augment(img, augment_seed)
    return to_pixels(img, spec)


def embed_batch(jobs: Sequence[ImageJob], embedder: Embedder, settings: Settings) -> EmbedBatch:
    """Decode and embed `jobs`, running the model on micro-batches of `settings.batch_size` images."""
    ids, failures, out = [], [], []
    pixels: list[np.ndarray] = []
    for i, job in enumerate(jobs):
        try:
            pixels.append(load_pixels(job, embedder.spec, settings))
            ids.append(job.id)
        except BadImageError as e:
            failures.append((job.id, str(e)))
        if pixels and (len(pixels) == settings.batch_size or i == len(jobs) - 1):
            out.append(np.asarray(embedder.embed(np.stack(pixels)), np.float32))
            pixels = []
    vectors = np.concatenate(out) if out else np.zeros((0, embedder.dim), np.float32)
    return EmbedBatch(np.asarray(ids, np.int64), vectors, failures)


CHUNK = 32  # jobs sent to a worker at a time; the model runs on micro-batches of settings.batch_size
_worker: dict = {}


def _init_worker(model: str, threads: int, settings: Settings) -> None:
    _exit_with_parent()
    _worker["embedder"] = load_embedder(model, threads=threads)
    _worker["settings"] = settings


def _exit_with_parent() -> None:
    """End this worker as soon as its parent dies (even by SIGKILL), instead of idling forever with a model loaded."""
    import threading
    from multiprocessing.connection import wait

    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])  # ready once the parent is gone
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _run_in_worker(jobs: Sequence[ImageJob]) -> EmbedBatch:
    return embed_batch(jobs, _worker["embedder"], _worker["settings"])


def worker_count(settings: Settings) -> int:
    return settings.workers if settings.workers > 0 else (os.cpu_count() or 1)


def embed_images(jobs: Sequence[ImageJob], embedder: Embedder, settings: Settings, *,
                 progress: ProgressFactory = no_progress, description: str = "embed") -> Iterator[EmbedBatch]:
    """Embed `jobs` in batches, yielding each batch as it completes.

    With more than two batches of work and more than one worker, batches go to worker processes (spawned, each
    loading `embedder.name` with cpu_count / workers inference threads); otherwise they run here on `embedder`.
    """
    size = CHUNK
    batches = [jobs[i:i + size] for i in range(0, len(jobs), size)]
    workers = worker_count(settings)
    with progress(description, len(jobs)) as advance:
        if workers <= 1 or len(batches) <= 2:
            for batch in batches:
                out = embed_batch(batch, embedder, settings)
                advance(len(batch))
                yield out
            return
        threads = max(1, (os.cpu_count() or 1) // workers)
        ctx = mp.get_context("spawn")  # never fork a process holding inference thread pools or DB connections
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(embedder.name, threads, settings)) as pool:
            pending: deque[tuple[Future, int]] = deque()
            queue = iter(batches)
            for batch in queue:
                pending.append((pool.submit(_run_in_worker, batch), len(batch)))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                future, n = pending.popleft()
                out = future.result()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append((pool.submit(_run_in_worker, nxt), len(nxt)))
                advance(n)
                yield out
