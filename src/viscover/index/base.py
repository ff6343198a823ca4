"""What every vector index backend offers (the `VectorIndex` protocol), the query and result types they share, and
the description a backend registers (`IndexBackend`). FAISS is the one built in (faiss_index.py); another backend
(e.g. Milvus) is one module that implements the protocol plus one `register_backend` call, and the contract suite
(tests/contracts/test_vector_index.py) runs on it unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Protocol, runtime_checkable

import numpy as np

from viscover.config import Settings


@dataclass(frozen=True, eq=False)
class Query:
    """Query vectors as an index compares them: centred unit floats, and their sign bits when binary search is
    wanted. Made by `VectorIndex.encode` (raw model output) or `stored_query` (indexed items); `Query(floats=...)`
    of unit vectors alone is enough for float search (e.g. related items' visual neighbours)."""

    floats: np.ndarray  # (n, dim) float32, one row per query
    bits: np.ndarray | None = None  # (n, ceil(dim / 8)) uint8 packed sign bits, or None: float search only

    def __post_init__(self) -> None:
        object.__setattr__(self, "floats", np.atleast_2d(np.asarray(self.floats, np.float32)))
        if self.bits is not None:
            object.__setattr__(self, "bits", np.atleast_2d(np.asarray(self.bits, np.uint8)))

    def __len__(self) -> int:
        return len(self.floats)

    def __getitem__(self, i: int) -> "Query":
        """The i-th query alone (search takes one query at a time)."""
        rows = slice(i, (i + 1) or None)
        return Query(self.floats[rows], None if self.bits is None else self.bits[rows])


@dataclass
class Hits:
    """Results of one query: item ids and cosine similarities, best first."""

    ids: np.ndarray
    scores: np.ndarray


class VectorIndex(Protocol):
    """The vector index of one model over item ids: float (cosine) and binary (Hamming short list re-ranked by
    cosine) search, incremental add/remove, and saves to a folder. Raw model vectors go in; how they are centred,
    normalised and binarised (the codec) stays inside the index."""

    model: str  # the model name the vectors come from (for messages and `describe`)

    @property
    def dim(self) -> int: ...

    @property
    def item_ids(self) -> np.ndarray:
        """Live item ids, sorted (int64)."""
        ...

    def __len__(self) -> int: ...

    def contains(self, item_ids: np.ndarray) -> np.ndarray:
        """Mask of the ids that are live in the index."""
        ...

    def image_of(self, item_ids: np.ndarray) -> np.ndarray:
        """The image id each (live) item was indexed with."""
        ...

    def add(self, item_ids: np.ndarray, image_ids: np.ndarray, raw: np.ndarray) -> None:
        """Add new items with their raw model vectors (ValueError for ids already in the index)."""
        ...

    def remove(self, item_ids: np.ndarray) -> int:
        """Remove items (unknown ids are ignored); return how many were removed."""
        ...

    def rebuild_required(self, adding: np.ndarray, removing: np.ndarray) -> bool:
        """True if adding these ids and removing those cannot be done in place, or would leave an index that
        should be rebuilt (another kind suits the new size, too many deleted entries)."""
        ...

    def encode(self, raw: np.ndarray) -> Query:
        """Raw model output (one row per query) -> what this index searches with."""
        ...

    def stored_query(self, item_ids: np.ndarray) -> Query:
        """The indexed vectors of live items as queries ("more like this")."""
        ...

    def stored_floats(self, item_ids: np.ndarray) -> np.ndarray:
        """The indexed unit float vectors of live items (duplicate collapse, related items); NotFoundError for
        ids not in the index."""
        ...

    def search(self, query: Query, k: int, *, binary: bool = False, allowed: np.ndarray | None = None,
               excluded: np.ndarray | None = None) -> Hits:
        """Top-k live items for one query; `allowed` restricts results to those ids, `excluded` removes ids."""
        ...

    def save(self, folder: Path) -> None:
        """Save atomically: a reader sees the previous save or this one, never a mix."""
        ...

    def describe(self) -> dict:
        """What the index holds: at least model, items, dim, and the kind of its float and binary search."""
        ...


@runtime_checkable
class Mergeable(Protocol):
    """An index with a delta tier and tombstones (viscover.index.tiered) that `index` folds in when due."""

    def merge_due(self) -> bool: ...

    def merge(self, before_swap: Callable[[], None] | None = None) -> None: ...


@dataclass(frozen=True)
class IndexKind:
    """One configuration a backend can choose between (e.g. exact or HNSW), with the settings that make it choose
    that one even on a small catalogue; the contract suite runs on every kind of every backend."""

    name: str
    settings: Mapping[str, Any]  # Settings overrides
    exact: bool = True  # float search returns exactly the brute-force top k (else: a recall floor)
    exact_binary: bool = True  # binary search's short list is exactly the Hamming-nearest codes


@dataclass(frozen=True)
class IndexBackend:
    """A vector index implementation as the registry knows it: how to build, load and version its saves."""

    name: str
    # (item_ids, image_ids, raw, settings, codec, model, size=None) -> a new index holding those items; `size`,
    # when given, is how many items it will hold once later batches are added (it may choose its kind by it)
    build: Callable[..., VectorIndex]
    # (folder, settings) -> the saved index, None if there is none; IndexCorruptError if it fails verification
    load: Callable[[Path, Settings], "VectorIndex | None"]
    # folder -> a value that changes whenever a new save lands there (None: nothing saved), for index caches
    saved_version: Callable[[Path], Hashable | None]
    kinds: tuple[IndexKind, ...] = (IndexKind("default", {}),)  # the configurations the contract suite runs
