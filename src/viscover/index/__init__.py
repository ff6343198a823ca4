"""Vector indexes over item ids, one per model: the `VectorIndex` interface, float and binary search, incremental,
saved atomically. Backends register by name (FAISS built in); `build_index` / `load_index` choose one."""

from viscover.errors import IndexCorruptError
from viscover.index.base import Hits, IndexBackend, IndexKind, Query, VectorIndex
from viscover.index.codec import Codec
from viscover.index.faiss_index import FaissIndex
from viscover.index.registry import (DEFAULT_BACKEND, backend_names, build_index, get_backend, load_index,
                                     register_backend, saved_version)

__all__ = ["Codec", "DEFAULT_BACKEND", "FaissIndex", "Hits", "IndexBackend", "IndexCorruptError", "IndexKind",
           "Query", "VectorIndex", "backend_names", "build_index", "get_backend", "load_index", "register_backend",
           "saved_version"]
