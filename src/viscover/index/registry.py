"""Index backends by name, and the functions the rest of viscover builds, loads and versions indexes with.

A backend is chosen by name: the `backend` argument, else the `index_backend` setting, else "faiss". Adding one
(e.g. Milvus) is a module with an `IndexBackend` and one `register_backend` call below; nothing else changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Hashable, Iterable

import numpy as np

from viscover.config import Settings
from viscover.errors import ConfigError
from viscover.index import faiss_index
from viscover.index.base import IndexBackend, Mergeable, VectorIndex
from viscover.index.codec import Codec

DEFAULT_BACKEND = "faiss"
Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # item ids, their image ids, their raw vectors

_BACKENDS: dict[str, IndexBackend] = {}


def register_backend(backend: IndexBackend) -> None:
    """Make a backend available by its name (a later registration of the same name replaces it)."""
    _BACKENDS[backend.name] = backend


def backend_names() -> list[str]:
    """Names of the registered backends, sorted."""
    return sorted(_BACKENDS)


def get_backend(settings: Settings, name: str | None = None) -> IndexBackend:
    """The backend called `name`, else the one the settings choose (index_backend), else the default."""
    name = name or settings.index_backend or DEFAULT_BACKEND
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown index backend {name!r}; known: {', '.join(backend_names())}") from None


def build_index(item_ids: np.ndarray, image_ids: np.ndarray, raw: np.ndarray, settings: Settings, *,
                centered: bool = False, model: str = "", backend: str | None = None) -> VectorIndex:
    """A new index over raw model vectors: centred on their mean unless the model's output is `centered`."""
    codec = Codec.for_vectors(raw, centered=centered)
    return get_backend(settings, backend).build(item_ids, image_ids, raw, settings, codec, model)


def build_index_batches(count: int, dim: int, batches: Callable[[], Iterable[Batch]], settings: Settings, *,
                        centered: bool = False, model: str = "", backend: str | None = None) -> VectorIndex:
    """A new index over `count` items given as batches of (item_ids, image_ids, raw), so that only one batch of
    raw vectors is in RAM besides the index itself. `batches()` is called twice unless the model's output is
    `centered`: once for the mean the codec centres on, once to add."""
    codec = Codec.identity(dim) if centered or count == 0 else Codec.fit_batches(raw for _, _, raw in batches())
    chosen = get_backend(settings, backend)
    index = None
    for item_ids, image_ids, raw in batches():
        if index is None:
            index = chosen.build(item_ids, image_ids, raw, settings, codec, model, size=count)
        else:
            index.add(item_ids, image_ids, raw)
    if isinstance(index, Mergeable):  # a tiered index took the later batches into its delta: fold them in
        index.merge()
    if index is None:
        index = chosen.build(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, dim), np.float32), settings,
                             codec, model, size=0)
    return index


def load_index(folder: Path, settings: Settings, *, backend: str | None = None) -> VectorIndex | None:
    """The index saved in `folder`, None if there is none; IndexCorruptError if it fails verification."""
    return get_backend(settings, backend).load(folder, settings)


def saved_version(folder: Path, settings: Settings, *, backend: str | None = None) -> Hashable | None:
    """A value that changes whenever a new save lands in `folder` (None: nothing saved), for index caches."""
    return get_backend(settings, backend).saved_version(folder)


register_backend(faiss_index.BACKEND)
