"""Vector indexes (FAISS) over item ids, one per model: float and binary, incremental, saved atomically."""

from viscover.index.codec import Codec
from viscover.index.faiss_index import Hits, IndexCorruptError, VectorIndex

__all__ = ["Codec", "Hits", "IndexCorruptError", "VectorIndex"]
