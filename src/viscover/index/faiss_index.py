"""The FAISS backend of `VectorIndex`: float (exact, or HNSW above a size threshold) and binary (sign bits,
exact Hamming or binary HNSW) FAISS indexes over item ids, with incremental add/remove and atomic, checksummed saves.

Removal: exact indexes delete in place; HNSW graphs cannot, so removed ids become tombstones that every search
excludes, until enough accumulate that the owner rebuilds (`needs_rebuild`). Binary search fetches a short list
by Hamming distance and re-ranks it by float cosine similarity.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import numpy as np

from viscover.config import Settings
from viscover.errors import IndexCorruptError, NotFoundError, Remedy
from viscover.fsutil import atomic_path, atomic_write_bytes, sha256_file
from viscover.index.base import Hits, IndexBackend, IndexKind, Query
from viscover.index.codec import Codec
from viscover.index.plan import COMPRESSED, plan_index
from viscover.index.selection import id_selector, no_hits, top_hits
from viscover.index.tiered import FORMAT as TIERED_FORMAT
from viscover.index.tiered import TieredIndex

FORMAT = "viscover-index/1"
MANIFEST = "manifest.json"
LOAD_ATTEMPTS = 5  # saves landing during one load: each retry reads the newer generation


class FaissIndex:
    """A `VectorIndex` in FAISS: an IDMap2 float index (inner product on unit vectors) and an IDMap2 binary index
    (packed sign bits), kept in step, plus the sorted live ids, their images and the tombstones."""

    def __init__(self, codec: Codec, settings: Settings, *, hnsw: bool = False, binary_hnsw: bool = False,
                 model: str = ""):
        self.codec = codec
        self.dim = codec.dim
        self.model = model
        self.settings = settings
        self.item_ids = np.zeros(0, np.int64)  # live items, sorted
        self.image_ids = np.zeros(0, np.int64)  # image of each live item
        self.tombstones = np.zeros(0, np.int64)  # ids still inside HNSW graphs but deleted
        self.hnsw = hnsw
        self.binary_hnsw = binary_hnsw
        self.float_index = self._new_float_index()
        self.binary_index = self._new_binary_index()

    # ---- construction ---------------------------------------------------------------------------------------
    @classmethod
    def build(cls, item_ids: np.ndarray, image_ids: np.ndarray, raw: np.ndarray, settings: Settings, *,
              codec: Codec | None = None, model: str = "", hnsw: bool | None = None,
              size: int | None = None) -> "FaissIndex":
        """A fresh index over `raw` vectors; HNSW is chosen when the catalogue is above the thresholds (or as
        `hnsw` says). Without a codec, the vectors are centred on their mean (`Codec.for_vectors`). `size`: the
        number of items the index will hold when these are a first batch (more follow by `add`), to choose its
        kind by."""
        raw = np.asarray(raw, np.float32)
        codec = codec if codec is not None else Codec.for_vectors(raw)
        n = len(item_ids) if size is None else size
        index = cls(codec, settings, hnsw=n > settings.hnsw_threshold if hnsw is None else hnsw,
                    binary_hnsw=n > settings.binary_hnsw_threshold, model=model)
        index.add(item_ids, image_ids, raw)
        return index

    def _new_float_index(self) -> faiss.Index:
        if self.hnsw:
            inner = faiss.IndexHNSWFlat(self.dim, self.settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.settings.hnsw_ef_construction
        else:
            inner = faiss.IndexFlatIP(self.dim)
        return faiss.IndexIDMap2(inner)

    def _new_binary_index(self) -> faiss.IndexBinary:
        bits = 8 * ((self.dim + 7) // 8)
        inner = faiss.IndexBinaryHNSW(bits, self.settings.hnsw_m) if self.binary_hnsw else faiss.IndexBinaryFlat(bits)
        return faiss.IndexBinaryIDMap2(inner)

    # ---- contents --------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.item_ids)

    def contains(self, item_ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.item_ids, item_ids)
        pos = np.minimum(pos, max(len(self.item_ids) - 1, 0))
        return (self.item_ids[pos] == item_ids) if len(self.item_ids) else np.zeros(len(item_ids), bool)

    def image_of(self, item_ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.item_ids, item_ids)
        return self.image_ids[pos]

    def add(self, item_ids: np.ndarray, image_ids: np.ndarray, raw: np.ndarray) -> None:
        """Add items with their raw model vectors. Ids must be new (not live, not tombstoned)."""
        item_ids = np.asarray(item_ids, np.int64)
        if len(item_ids) == 0:
            return
        if self.contains(item_ids).any() or np.isin(item_ids, self.tombstones).any():
            raise ValueError("adding ids already in the index; remove them first, or rebuild if tombstoned")
        raw = np.asarray(raw, np.float32)
        self.float_index.add_with_ids(self.codec.floats(raw), item_ids)
        self.binary_index.add_with_ids(self.codec.bits(raw), item_ids)
        ids = np.concatenate([self.item_ids, item_ids])
        imgs = np.concatenate([self.image_ids, np.asarray(image_ids, np.int64)])
        order = np.argsort(ids, kind="stable")
        self.item_ids, self.image_ids = ids[order], imgs[order]

    def remove(self, item_ids: np.ndarray) -> int:
        """Remove items by id (unknown ids are ignored); return how many were removed."""
        item_ids = np.asarray(item_ids, np.int64)
        present = item_ids[self.contains(item_ids)] if len(item_ids) else item_ids
        if len(present) == 0:
            return 0
        if self.hnsw or self.binary_hnsw:
            self.tombstones = np.union1d(self.tombstones, present)
        if not self.hnsw:
            self.float_index.remove_ids(present)
        if not self.binary_hnsw:
            self.binary_index.remove_ids(present)
        keep = ~np.isin(self.item_ids, present)
        self.item_ids, self.image_ids = self.item_ids[keep], self.image_ids[keep]
        return int(len(present))

    def blocks_add(self, item_ids: np.ndarray) -> bool:
        """True if these ids cannot be added without a rebuild (they are tombstoned in an HNSW graph)."""
        return bool(len(self.tombstones)) and bool(np.isin(item_ids, self.tombstones).any())

    def rebuild_required(self, adding: np.ndarray, removing: np.ndarray) -> bool:
        """True if `adding` holds a tombstoned id, or the index after the change needs a rebuild (kind or
        tombstones: `needs_rebuild`)."""
        adding, removing = np.asarray(adding, np.int64), np.asarray(removing, np.int64)
        gone = int(self.contains(removing).sum()) if len(removing) else 0
        return self.blocks_add(adding) or self.needs_rebuild(len(self) - gone + len(adding), removing=gone)

    def needs_rebuild(self, future_size: int | None = None, removing: int = 0) -> bool:
        """Too many tombstones (counting `removing` ids about to be removed), or a size that calls for another
        kind of index."""
        size = len(self) if future_size is None else future_size
        total = len(self) + len(self.tombstones)
        dead = len(self.tombstones) + (removing if (self.hnsw or self.binary_hnsw) else 0)
        if total and dead / total > self.settings.compact_ratio:
            return True
        wanted = plan_index(size, self.dim, self.settings).kind  # exact up to hnsw_threshold, unless a budget says
        return wanted in COMPRESSED or (wanted == "hnsw") != self.hnsw or \
            (size > self.settings.binary_hnsw_threshold) != self.binary_hnsw

    # ---- queries ---------------------------------------------------------------------------------------------
    def encode(self, raw: np.ndarray) -> Query:
        """Raw model vectors (one row per query) -> centred unit floats and sign bits, as the items were indexed."""
        return Query(self.codec.floats(raw), self.codec.bits(raw))

    def stored_query(self, item_ids: np.ndarray) -> Query:
        """The indexed vectors of live items, with their sign bits (normalising does not change signs), as
        queries."""
        floats = self.stored_floats(item_ids)
        return Query(floats, np.packbits(floats > 0, axis=1))

    def stored_floats(self, item_ids: np.ndarray) -> np.ndarray:
        """The indexed (normalised) float vectors of live items."""
        item_ids = np.asarray(item_ids, np.int64)
        missing = item_ids[~self.contains(item_ids)]
        if len(missing):
            raise NotFoundError(f"item row(s) {missing[:5].tolist()} are not in the {self.model} index",
                                remedy=Remedy("index", model=self.model or None))
        return self.float_index.reconstruct_batch(item_ids)

    def stored_bits(self, item_ids: np.ndarray) -> np.ndarray:
        """Sign bits of live items: those of their stored floats (normalising does not change signs)."""
        return self.stored_query(item_ids).bits

    def search(self, query: Query, k: int, *, binary: bool = False, allowed: np.ndarray | None = None,
               excluded: np.ndarray | None = None) -> Hits:
        """Top-k live items for one query (its float vector, and sign bits, needed for binary search).

        `allowed` restricts results to those ids (a filter); `excluded` removes ids (e.g. the query item).
        """
        if len(query) != 1:
            raise ValueError(f"search takes one query at a time, not {len(query)}")
        floats, bits = query.floats, query.bits
        if binary and bits is None:
            raise ValueError("binary search needs the query's sign bits")
        if allowed is not None:
            allowed = np.asarray(allowed, np.int64)
            allowed = allowed[self.contains(allowed)] if len(allowed) else allowed
            if excluded is not None and len(excluded):
                allowed = np.setdiff1d(allowed, excluded)
            if len(allowed) <= self.settings.filter_exact_max:
                return self._search_subset(floats, bits, k, allowed, binary)
        gone = 0 if excluded is None else int(self.contains(np.asarray(excluded, np.int64)).sum())
        k = max(0, min(k, len(self) - gone))
        if k == 0:
            return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32))
        selector = self._selector(allowed, excluded)
        if not binary:
            ids, scores = self._float_search(floats, k, selector)
        else:
            short = self._binary_search(bits, k * self.settings.binary_rerank, selector)
            ids, scores = self._rerank(floats, short, k)
        return Hits(ids, scores)

    def _selector(self, allowed: np.ndarray | None, excluded: np.ndarray | None):
        dead = self.tombstones
        if excluded is not None and len(excluded):
            dead = np.union1d(dead, np.asarray(excluded, np.int64))
        return id_selector(allowed, dead)

    def _float_search(self, floats: np.ndarray, k: int, selector) -> tuple[np.ndarray, np.ndarray]:
        if self.hnsw:
            params = faiss.SearchParametersHNSW(efSearch=max(self.settings.hnsw_ef_search, k), sel=selector)
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        scores, ids = self.float_index.search(floats, k, params=params)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def _binary_search(self, bits: np.ndarray, n: int, selector) -> np.ndarray:
        n = max(1, min(n, len(self)))
        if self.binary_hnsw:
            params = faiss.SearchParametersHNSW(efSearch=max(self.settings.hnsw_ef_search, n), sel=selector)
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        _, ids = self.binary_index.search(bits, n, params=params)
        return ids[0][ids[0] >= 0]

    def _rerank(self, floats: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.float_index.reconstruct_batch(candidates) @ floats[0]  # (0,) float32 for no candidates
        order = np.argsort(-scores, kind="stable")[:k]
        return candidates[order], scores[order]

    def _search_subset(self, floats: np.ndarray, bits, k: int, allowed: np.ndarray, binary: bool) -> Hits:
        """Exact search over a small filtered subset: faster and more complete than a filtered graph walk."""
        if len(allowed) == 0 or k <= 0:
            return no_hits()
        if binary:
            codes = self.stored_bits(allowed)
            dist = np.bitwise_count(np.bitwise_xor(codes, bits)).sum(axis=1)
            short = allowed[np.argsort(dist, kind="stable")[: k * self.settings.binary_rerank]]
            ids, scores = self._rerank(floats, short, k)
            return Hits(ids, scores)
        return top_hits(allowed, self.float_index.reconstruct_batch(allowed) @ floats[0], k)

    # ---- persistence -----------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write every file under a new generation name, then switch the manifest atomically, then clean up.
        One save at a time per folder (the engine holds the home's write lock)."""
        folder.mkdir(parents=True, exist_ok=True)
        old = _read_manifest(folder)
        generation = int(old.get("generation", 0)) + 1 if old else 1
        files = {"float": f"float-{generation}.faiss", "binary": f"binary-{generation}.faiss",
                 "arrays": f"arrays-{generation}.npz"}
        with atomic_path(folder / files["float"]) as tmp:
            faiss.write_index(self.float_index, str(tmp))
        with atomic_path(folder / files["binary"]) as tmp:
            faiss.write_index_binary(self.binary_index, str(tmp))
        with atomic_path(folder / files["arrays"]) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, item_ids=self.item_ids, image_ids=self.image_ids, tombstones=self.tombstones,
                         center=self.codec.center)
        manifest = {"format": FORMAT, "generation": generation, "model": self.model, "dim": self.dim,
                    "count": len(self), "tombstones": len(self.tombstones),
                    "float_kind": "hnsw" if self.hnsw else "flat",
                    "binary_kind": "hnsw" if self.binary_hnsw else "flat",
                    "files": {role: {"name": name, "sha256": sha256_file(folder / name)}
                              for role, name in files.items()}}
        atomic_write_bytes(folder / MANIFEST, json.dumps(manifest, indent=2).encode())
        keep = {MANIFEST, *files.values()}
        for path in folder.iterdir():  # old generations, and temp files left by saves killed midway
            stale = not path.name.startswith(".") or path.name.endswith(".tmp")
            if path.name not in keep and stale:
                path.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: Path, settings: Settings) -> "FaissIndex | None":
        """Load a saved index (None if there is none); raise IndexCorruptError if its files fail verification.

        Readers take no lock: a save that lands while this reads replaces the generation being read and removes
        its files. Then the manifest names a newer generation, and that one is read instead."""
        for attempt in range(LOAD_ATTEMPTS):
            manifest = _read_manifest(folder)
            if manifest is None:
                return None
            try:
                if manifest.get("format") == TIERED_FORMAT:  # a compressed kind (ivfpq, binary codes)
                    return TieredIndex.load_generation(folder, manifest, settings)  # type: ignore[return-value]
                return cls._load_generation(folder, manifest, settings)
            except IndexCorruptError:
                newer = _read_manifest(folder)
                replaced = newer is not None and newer.get("generation") != manifest.get("generation")
                if not replaced or attempt == LOAD_ATTEMPTS - 1:
                    raise  # the files really are damaged, or saves kept landing
        raise AssertionError("unreachable")

    @classmethod
    def _load_generation(cls, folder: Path, manifest: dict, settings: Settings) -> "FaissIndex":
        """The index files that `manifest` names, verified against its checksums."""
        if manifest.get("format") != FORMAT:
            raise IndexCorruptError(f"{folder}: unknown index format {manifest.get('format')!r}")
        try:
            paths = {role: folder / entry["name"] for role, entry in manifest["files"].items()}
            for role, entry in manifest["files"].items():
                if sha256_file(paths[role]) != entry["sha256"]:
                    raise IndexCorruptError(f"{paths[role]}: checksum mismatch (file damaged)")
            with np.load(paths["arrays"], allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            index = cls(Codec(center=arrays["center"].astype(np.float32)), settings,
                        hnsw=manifest["float_kind"] == "hnsw", binary_hnsw=manifest["binary_kind"] == "hnsw",
                        model=manifest.get("model", ""))
            index.float_index = faiss.read_index(str(paths["float"]))
            index.binary_index = faiss.read_index_binary(str(paths["binary"]))
        except IndexCorruptError:
            raise
        except (OSError, KeyError, ValueError, RuntimeError) as e:
            raise IndexCorruptError(f"{folder}: unreadable index ({type(e).__name__}: {e})") from None
        index.item_ids, index.image_ids = arrays["item_ids"], arrays["image_ids"]
        index.tombstones = arrays["tombstones"]
        return index

    def describe(self) -> dict:
        """Model, size, tombstones and the kind (exact or hnsw) of the float and binary indexes."""
        return {"model": self.model, "items": len(self), "dim": self.dim, "tombstones": int(len(self.tombstones)),
                "float": "hnsw" if self.hnsw else "exact", "binary": "hnsw" if self.binary_hnsw else "exact"}


def saved_version(folder: Path) -> tuple[int, int] | None:
    """(mtime in ns, inode) of the folder's manifest, None if absent: changes whenever a save switches it. Asked on
    every search: one stat of a string path (a Path kept by the caller renders once), no pathlib joins."""
    try:
        st = os.stat(f"{folder}/{MANIFEST}")
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ino


def _build(item_ids: np.ndarray, image_ids: np.ndarray, raw: np.ndarray, settings: Settings, codec: Codec,
           model: str, size: int | None = None) -> "FaissIndex | TieredIndex":
    """The kind `plan_index` picks for this many items (memory_budget, index_kind): FAISS graphs or exact search,
    or a tiered index of codes in RAM. `size`: the items the index will hold when these are a first batch."""
    kind = plan_index(len(item_ids) if size is None else size, codec.dim, settings).kind
    if kind in COMPRESSED:
        return TieredIndex.build(item_ids, image_ids, raw, settings, kind, codec=codec, model=model, size=size)
    return FaissIndex.build(item_ids, image_ids, raw, settings, codec=codec, model=model, hnsw=kind == "hnsw",
                            size=size)


_NEVER = 10**12  # a threshold no catalogue reaches
BACKEND = IndexBackend(
    "faiss", build=_build, load=FaissIndex.load, saved_version=saved_version,
    kinds=(IndexKind("exact", {"hnsw_threshold": _NEVER, "binary_hnsw_threshold": _NEVER}),
           IndexKind("exact-selector", {"hnsw_threshold": _NEVER, "binary_hnsw_threshold": _NEVER,
                                        "filter_exact_max": 0}),
           IndexKind("hnsw", {"hnsw_threshold": 0, "binary_hnsw_threshold": _NEVER}, exact=False),
           IndexKind("binary-hnsw", {"hnsw_threshold": _NEVER, "binary_hnsw_threshold": 0}, exact_binary=False),
           IndexKind("graphs", {"hnsw_threshold": 0, "binary_hnsw_threshold": 0, "filter_exact_max": 0},
                     exact=False, exact_binary=False),
           IndexKind("ivfpq", {"index_kind": "ivfpq", "filter_exact_max": 0}, exact=False),
           IndexKind("binary-codes", {"index_kind": "binary", "filter_exact_max": 0}, exact=False)))


def _read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise IndexCorruptError(f"{path}: unreadable manifest ({e})") from None
