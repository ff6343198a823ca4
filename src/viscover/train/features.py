"""Frozen-trunk features, computed once per image and view and cached: the clean image (view 0) and `views`
augmented copies, each a deterministic function of the image's content hash, the view number and the seed.

The cache lives in the user cache folder (`<cache>/features/<backbone>/`) in the same atomic shard format as
stored embeddings, keyed by a 63-bit hash of (image SHA-256, view, seed), so any later run on the same images
reuses it, whatever manifest they come from.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from viscover.catalog.records import Problem
from viscover.config import Settings
from viscover.embed import load_embedder
from viscover.embed.efficientnet import EXPORT_VERSION
from viscover.embed.pipeline import ImageJob, embed_images
from viscover.embed.vectors import EmbeddingStore
from viscover.errors import BadImageError
from viscover.imaging import read_image_bytes
from viscover.paths import cache_dir
from viscover.progress import ProgressFactory, no_progress

AUGMENT_VERSION = 1  # bump when viscover.imaging.augment changes, so cached views are recomputed


def _key(sha: str, view: int, seed: int) -> int:
    digest = hashlib.sha256(f"{sha}:{view}:{seed}:{AUGMENT_VERSION}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def _sha(location: str, settings: Settings) -> str | Problem:
    try:
        data = read_image_bytes(location, max_bytes=settings.max_image_bytes, timeout=settings.url_timeout,
                                url_allow_hosts=settings.url_allow_hosts)
    except BadImageError as e:
        return Problem(location, str(e))
    return hashlib.sha256(data).hexdigest()


def trunk_features(locations: list[str], backbone: str, views: int, seed: int, settings: Settings,
                   progress: ProgressFactory = no_progress) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    """(features (N, views + 1, F) float32, usable (N,) bool, problems) for the images at `locations`."""
    with ThreadPoolExecutor(max_workers=max(1, settings.ingest_threads)) as pool:
        shas = list(pool.map(lambda loc: _sha(loc, settings), locations))
    problems = [s for s in shas if isinstance(s, Problem)]
    ok = np.array([not isinstance(s, Problem) for s in shas], bool)
    keys = np.zeros((len(locations), views + 1), np.int64)
    seeds = {}
    for i, sha in enumerate(shas):
        if ok[i]:
            for v in range(views + 1):
                keys[i, v] = _key(sha, v, seed)
                seeds[int(keys[i, v])] = None if v == 0 else int(keys[i, v] % 2**31)
    store = EmbeddingStore(cache_dir() / "features" / f"{backbone}-v{EXPORT_VERSION}")
    have = store.ids()
    wanted = np.unique(keys[ok])
    missing = wanted[~np.isin(wanted, have)]
    location_of = {int(keys[i, v]): locations[i] for i in np.nonzero(ok)[0] for v in range(views + 1)}
    if len(missing):
        embedder = load_embedder(backbone)
        jobs = [ImageJob(int(k), location_of[int(k)], augment_seed=seeds[int(k)]) for k in missing]
        ids_buf, vec_buf = [], []
        for batch in embed_images(jobs, embedder, settings, progress=progress, description="trunk features"):
            problems += [Problem(location_of[i], reason) for i, reason in batch.failures]
            ids_buf.append(batch.ids)
            vec_buf.append(batch.vectors)
            if sum(len(b) for b in ids_buf) >= 4096:
                store.append(np.concatenate(ids_buf), np.concatenate(vec_buf))
                ids_buf, vec_buf = [], []
        if ids_buf:
            store.append(np.concatenate(ids_buf), np.concatenate(vec_buf))
        store.compact(max_shards=16)
    ids, vectors = store.load(wanted)
    found = np.zeros(keys.shape, bool)
    found[ok] = np.isin(keys[ok], ids)
    ok &= found.all(axis=1)
    features = np.zeros((len(locations), views + 1, vectors.shape[1] if len(vectors) else 0), np.float32)
    rows = np.nonzero(ok)[0]
    features[rows] = vectors[np.searchsorted(ids, keys[rows])]
    return features, ok, problems
