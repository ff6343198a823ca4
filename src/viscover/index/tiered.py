"""The compressed kinds of `VectorIndex` (plan kinds "ivfpq" and "binary"): codes in RAM, exact floats from a
`FloatSource` (memory-mapped from disk once saved) re-rank a short list, so scores are true cosines.

Two tiers: a main index, built (IVF-PQ trained on a seeded sample) and never changed in place, and a small exact
delta that takes new items. Removals are tombstones over the main index. `merge` folds the delta in and drops the
tombstones by building a new main off to the side and swapping it in; searches read one immutable snapshot of the
state, so they never wait for a merge or see half of one. Writers (add, remove, the swap) take a short lock."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Callable, Protocol

import faiss
import numpy as np

from viscover.config import Settings
from viscover.errors import IndexCorruptError, NotFoundError, Remedy
from viscover.fsutil import atomic_path, atomic_write_bytes, sha256_file
from viscover.index.base import Hits, Query
from viscover.index.codec import Codec
from viscover.index.plan import ivfpq_params
from viscover.index.selection import id_selector, no_hits, top_hits

FORMAT = "viscover-tiered/1"
MANIFEST = "manifest.json"
# Up to this many dead ids (tombstones and the query's own items) are dropped from a search fetching that many
# more, instead of being tested by a FAISS IDSelector on every candidate: a flat scan of 1M codes tested 1M ids
# (binary codes: 5.3 ms per search by id against 1.6 ms for the index without it).
DROP_AFTER = 64
MIN_TRAIN = 1000  # fewer vectors than this train no IVF-PQ: they stay in the exact delta
SEED = 0
_EMPTY = np.zeros(0, np.int64)


class FloatSource(Protocol):
    """Unit float vectors of item ids ("floats of these ids"): the index's own table, or embedding shards."""

    def floats(self, ids: np.ndarray) -> np.ndarray:
        """(len(ids), dim) float32 rows of these ids (all known to the source)."""
        ...


@dataclass(frozen=True)
class FloatTable:
    """A `FloatSource` over sorted ids and their rows (a read-only memory map once loaded from disk)."""

    ids: np.ndarray  # sorted int64
    rows: np.ndarray  # (len(ids), dim) float32

    @cached_property
    def _row_of(self) -> np.ndarray | None:
        """Row of each id up to the largest, when ids are dense enough (catalogue row ids are): a gather instead
        of a binary search over a million ids per re-ranked candidate (0.14 of 1.06 ms per IVF-PQ search)."""
        top = int(self.ids[-1]) if len(self.ids) else -1
        if top < 0 or int(self.ids[0]) < 0 or top >= 4 * len(self.ids) + 1024:
            return None
        row_of = np.full(top + 1, -1, np.int32 if len(self.ids) < 2**31 else np.int64)
        row_of[self.ids] = np.arange(len(self.ids))
        return row_of

    def floats(self, ids: np.ndarray) -> np.ndarray:
        row_of = self._row_of
        rows = row_of[ids] if row_of is not None else np.searchsorted(self.ids, ids)
        return np.asarray(self.rows[rows], np.float32)


@dataclass(frozen=True)
class _State:
    """One consistent view of the index; replaced whole by writers, read whole by searches."""

    main: faiss.Index | None  # IVF-PQ over the main ids (kind ivfpq, once trained), else None
    bits: faiss.IndexBinary  # sign bits of the main ids (binary search; the kind binary's float short list)
    table: FloatSource  # floats of every main id
    main_ids: np.ndarray  # sorted: every id in the main tier, live or tombstoned
    tombstones: np.ndarray  # sorted: main ids removed since the main was built
    delta_ids: np.ndarray  # sorted: items added since (an id may also be tombstoned in main: re-added)
    delta_floats: np.ndarray
    delta_bits: np.ndarray
    delta_seq: np.ndarray  # when each delta row was added (merges keep rows added while they ran)
    item_ids: np.ndarray  # live, sorted
    image_ids: np.ndarray
    token: str  # names the main's files: unchanged main, files reused by the next save


class TieredIndex:
    """A `VectorIndex` of kind ivfpq or binary: main codes + exact delta + tombstones, floats from a FloatSource."""

    def __init__(self, codec: Codec, settings: Settings, kind: str, *, model: str = ""):
        self.codec, self.settings, self.kind, self.model = codec, settings, kind, model
        self.dim = codec.dim
        self._write = threading.Lock()
        self._merging = threading.Lock()
        self._seq = 0
        nbytes = (self.dim + 7) // 8
        self._state = _State(None, _new_bits(self.dim), FloatTable(_EMPTY, np.zeros((0, self.dim), np.float32)),
                             _EMPTY, _EMPTY, _EMPTY, np.zeros((0, self.dim), np.float32),
                             np.zeros((0, nbytes), np.uint8), _EMPTY, _EMPTY, _EMPTY, "")

    # ---- construction ---------------------------------------------------------------------------------------
    @classmethod
    def build(cls, item_ids: np.ndarray, image_ids: np.ndarray, raw: np.ndarray, settings: Settings, kind: str, *,
              codec: Codec | None = None, model: str = "", size: int | None = None) -> "TieredIndex":
        """A fresh index: every item in the main tier (IVF-PQ trained on a seeded sample of them). With `size`
        larger than this batch (the first of a build in batches), an IVF-PQ is not trained on the batch: the items
        wait in the exact delta and the merge after the last batch trains on all of them (trained on a first
        batch of 1M items, the lists were sized for the batch: recall@10 0.980 instead of 1.0, 2.7x slower)."""
        raw = np.asarray(raw, np.float32)
        codec = codec if codec is not None else Codec.for_vectors(raw)
        index = cls(codec, settings, kind, model=model)
        item_ids, image_ids = np.asarray(item_ids, np.int64), np.asarray(image_ids, np.int64)
        order = np.argsort(item_ids, kind="stable")
        ids, floats = item_ids[order], codec.floats(raw[order]) if len(raw) else np.zeros((0, codec.dim), np.float32)
        first_batch = kind == "ivfpq" and size is not None and size > len(ids)
        main, bits, token = index._build_main(ids, floats, None, train=not first_batch)
        if main is None and kind == "ivfpq":  # too few to train (or a first batch): everything waits in the delta
            index._state = replace(index._state, item_ids=ids, image_ids=image_ids[order])
            index._put_delta(ids, floats)
            return index
        index._state = replace(index._state, main=main, bits=bits, table=FloatTable(ids, floats), main_ids=ids,
                               item_ids=ids, image_ids=image_ids[order], token=token)
        return index

    def _build_main(self, ids: np.ndarray, floats: np.ndarray, base: _State | None, *, train: bool = True):
        """(IVF-PQ or None, bit index, token) over these ids: `base`'s trained IVF-PQ reused while its lists suit
        this many items (the plan's nlist for them within a factor of 2 of its own), else a new one trained."""
        bits = _new_bits(self.dim)
        if len(ids):
            bits.add_with_ids(np.packbits(floats > 0, axis=1), ids)
        main = None
        if self.kind == "ivfpq":
            if base is not None and base.main is not None and self._suits(base.main, len(ids)):
                main = faiss.clone_index(base.main)
                main.reset()
            elif train and len(ids) >= MIN_TRAIN:
                main = self._train(floats)
            if main is not None and len(ids):
                main.add_with_ids(floats, ids)
        return main, bits, uuid.uuid4().hex[:12]

    def _suits(self, trained: faiss.Index, n: int) -> bool:
        """Whether an IVF-PQ trained earlier still suits n items: its list count within a factor of 2 of the
        plan's for n (nlist grows as sqrt(n): a catalogue grown 4x since training is trained again, at a merge)."""
        have, want = faiss.extract_index_ivf(trained).nlist, ivfpq_params(n, self.dim, self.settings)["nlist"]
        return want / 2 <= have <= want * 2

    def _train(self, floats: np.ndarray) -> faiss.Index:
        p = ivfpq_params(len(floats), self.dim, self.settings)
        quantizer = faiss.IndexFlatL2(self.dim)  # L2 on unit vectors ranks like cosine
        index = faiss.IndexIVFPQ(quantizer, self.dim, p["nlist"], p["pq_m"], p["nbits"])
        sample = np.random.default_rng(SEED).choice(len(floats), size=p["train_size"], replace=False)
        index.train(floats[np.sort(sample)])
        index.nprobe = p["nprobe"]
        return index

    def _put_delta(self, ids: np.ndarray, floats: np.ndarray) -> None:
        """Append rows to the delta (the caller holds the write lock or owns the index)."""
        st = self._state
        seq = np.arange(self._seq, self._seq + len(ids), dtype=np.int64)
        self._seq += len(ids)
        all_ids = np.concatenate([st.delta_ids, ids])
        order = np.argsort(all_ids, kind="stable")
        self._state = replace(
            st, delta_ids=all_ids[order], delta_floats=np.concatenate([st.delta_floats, floats])[order],
            delta_bits=np.concatenate([st.delta_bits, np.packbits(floats > 0, axis=1)])[order],
            delta_seq=np.concatenate([st.delta_seq, seq])[order])

    # ---- contents --------------------------------------------------------------------------------------------
    @property
    def item_ids(self) -> np.ndarray:
        return self._state.item_ids

    @property
    def tombstones(self) -> np.ndarray:
        return self._state.tombstones

    @property
    def delta_size(self) -> int:
        return len(self._state.delta_ids)

    def __len__(self) -> int:
        return len(self._state.item_ids)

    def contains(self, item_ids: np.ndarray) -> np.ndarray:
        return _isin_sorted(np.asarray(item_ids, np.int64), self._state.item_ids)

    def image_of(self, item_ids: np.ndarray) -> np.ndarray:
        st = self._state
        return st.image_ids[np.searchsorted(st.item_ids, item_ids)]

    def add(self, item_ids: np.ndarray, image_ids: np.ndarray, raw: np.ndarray) -> None:
        """New items go to the exact delta (a tombstoned id may come back: its old vector stays dead)."""
        item_ids = np.asarray(item_ids, np.int64)
        if len(item_ids) == 0:
            return
        if len(np.unique(item_ids)) != len(item_ids):
            raise ValueError("adding the same id twice")
        floats = self.codec.floats(np.asarray(raw, np.float32))
        with self._write:
            if self.contains(item_ids).any():
                raise ValueError("adding ids already in the index; remove them first")
            self._put_delta(item_ids, floats)
            st = self._state
            ids = np.concatenate([st.item_ids, item_ids])
            imgs = np.concatenate([st.image_ids, np.asarray(image_ids, np.int64)])
            order = np.argsort(ids, kind="stable")
            self._state = replace(st, item_ids=ids[order], image_ids=imgs[order])

    def remove(self, item_ids: np.ndarray) -> int:
        """Delta items are dropped, main items tombstoned; unknown ids ignored. Returns how many were live."""
        item_ids = np.unique(np.asarray(item_ids, np.int64))
        with self._write:
            st = self._state
            present = item_ids[self.contains(item_ids)]
            if len(present) == 0:
                return 0
            in_delta = _isin_sorted(st.delta_ids, present)
            from_main = np.setdiff1d(present, st.delta_ids[in_delta])
            keep = ~_isin_sorted(st.item_ids, present)
            self._state = replace(
                st, delta_ids=st.delta_ids[~in_delta], delta_floats=st.delta_floats[~in_delta],
                delta_bits=st.delta_bits[~in_delta], delta_seq=st.delta_seq[~in_delta],
                tombstones=np.union1d(st.tombstones, from_main), item_ids=st.item_ids[keep],
                image_ids=st.image_ids[keep])
            return int(len(present))

    def rebuild_required(self, adding: np.ndarray, removing: np.ndarray) -> bool:
        """Only when the plan for the new size is another kind: tombstones and adds are merged, not rebuilt."""
        from viscover.index.plan import plan_index

        size = len(self) - int(self.contains(np.asarray(removing, np.int64)).sum()) + len(adding)
        return plan_index(size, self.dim, self.settings).kind != self.kind

    def merge_due(self) -> bool:
        """The delta holds more than delta_max items, or tombstones exceed compact_ratio of the main tier."""
        st = self._state
        dead = len(st.tombstones) / max(1, len(st.main_ids))
        return len(st.delta_ids) > self.settings.delta_max or dead > self.settings.compact_ratio

    # ---- merging ---------------------------------------------------------------------------------------------
    def merge(self, before_swap: Callable[[], None] | None = None) -> None:
        """Fold the delta into a new main tier without the tombstones, built off to the side, then swap it in.
        Searches meanwhile use the old state; adds and removes made meanwhile are kept (`before_swap`, called
        between build and swap, lets tests act in that window)."""
        with self._merging:
            with self._write:
                start, seq = self._state, self._seq
            keep = np.setdiff1d(start.main_ids, start.tombstones, assume_unique=True)
            ids = np.concatenate([keep, start.delta_ids])
            floats = np.concatenate([start.table.floats(keep), start.delta_floats])
            order = np.argsort(ids, kind="stable")
            ids, floats = ids[order], floats[order]
            main, bits, token = self._build_main(ids, floats, start)
            if main is None and self.kind == "ivfpq":
                return  # still too few to train: the delta stays exact
            if before_swap is not None:
                before_swap()
            with self._write:
                now = self._state
                later = now.delta_seq >= seq  # rows added while the merge ran stay in the delta
                served = np.setdiff1d(now.item_ids, now.delta_ids[later])  # live ids the new main answers for
                self._state = replace(
                    now, main=main, bits=bits, table=FloatTable(ids, floats), main_ids=ids,
                    tombstones=np.setdiff1d(ids, served, assume_unique=True), delta_ids=now.delta_ids[later],
                    delta_floats=now.delta_floats[later], delta_bits=now.delta_bits[later],
                    delta_seq=now.delta_seq[later], token=token)

    def merge_in_background(self, before_swap: Callable[[], None] | None = None) -> threading.Thread:
        """Start `merge` in a daemon thread and return it."""
        thread = threading.Thread(target=self.merge, args=(before_swap,), daemon=True, name="index-merge")
        thread.start()
        return thread

    # ---- queries ---------------------------------------------------------------------------------------------
    def encode(self, raw: np.ndarray) -> Query:
        return Query(self.codec.floats(raw), self.codec.bits(raw))

    def stored_floats(self, item_ids: np.ndarray) -> np.ndarray:
        """Exact unit floats of live items (delta rows, else the main tier's float source)."""
        item_ids = np.asarray(item_ids, np.int64)
        st = self._state
        missing = item_ids[~_isin_sorted(item_ids, st.item_ids)]
        if len(missing):
            raise NotFoundError(f"item row(s) {missing[:5].tolist()} are not in the {self.model} index",
                                remedy=Remedy("index", model=self.model or None))
        return _floats_of(st, item_ids)

    def stored_query(self, item_ids: np.ndarray) -> Query:
        floats = self.stored_floats(item_ids)
        return Query(floats, np.packbits(floats > 0, axis=1))

    def search(self, query: Query, k: int, *, binary: bool = False, allowed: np.ndarray | None = None,
               excluded: np.ndarray | None = None) -> Hits:
        """Top-k live items: a short list from the main tier's codes (tombstones, exclusions and the filter
        applied in FAISS), the delta scored exactly, all re-ranked by exact floats."""
        if len(query) != 1:
            raise ValueError(f"search takes one query at a time, not {len(query)}")
        if binary and query.bits is None:
            raise ValueError("binary search needs the query's sign bits")
        st = self._state  # one snapshot for the whole search
        excluded = _EMPTY if excluded is None or len(excluded) == 0 else np.unique(np.asarray(excluded, np.int64))
        if allowed is not None:
            allowed = np.unique(np.asarray(allowed, np.int64))
            allowed = np.setdiff1d(allowed[_isin_sorted(allowed, st.item_ids)], excluded, assume_unique=True)
            if len(allowed) <= self.settings.filter_exact_max:
                return self._search_subset(st, query, k, allowed, binary)
        if len(excluded):
            k = min(k, len(st.item_ids) - int(_isin_sorted(excluded, st.item_ids).sum()))
        k = max(0, min(k, len(st.item_ids)))
        if k == 0:
            return no_hits()
        short = k * (self.settings.binary_rerank if binary else self.settings.codes_rerank)
        dead = np.union1d(st.tombstones, excluded) if len(excluded) else st.tombstones
        if allowed is None and len(dead) <= DROP_AFTER:  # fetch that many more, drop them after the search
            sel, drop = None, dead
        else:
            sel, drop = id_selector(allowed, dead), _EMPTY
        rows = slice(None)  # delta rows to score
        if len(st.delta_ids) and (len(excluded) or allowed is not None):
            rows = ~_isin_sorted(st.delta_ids, excluded)
            if allowed is not None:
                rows &= _isin_sorted(st.delta_ids, allowed)
        if binary:  # the `short` Hamming-nearest over both tiers, then re-ranked
            ids, dist = self._bits_search(st, query.bits, short + len(drop), sel)
            if len(drop):
                keep = ~_isin_sorted(ids, drop)
                ids, dist = ids[keep][:short], dist[keep][:short]
            if len(st.delta_ids):
                more = np.bitwise_count(np.bitwise_xor(st.delta_bits[rows], query.bits)).sum(axis=1)
                ids = np.concatenate([ids, st.delta_ids[rows]])
                ids = ids[np.argsort(np.concatenate([dist, more]), kind="stable")[:short]]
            return top_hits(ids, _floats_of(st, ids) @ query.floats[0], k)
        if st.main is not None:
            main_ids = self._ivf_search(st, query.floats, short + len(drop), sel)
        else:
            main_ids = self._bits_search(st, query.bits if query.bits is not None else
                                         np.packbits(query.floats > 0, axis=1), short + len(drop), sel)[0]
        if len(drop):
            main_ids = main_ids[~_isin_sorted(main_ids, drop)][:short]
        scores = st.table.floats(main_ids) @ query.floats[0]
        if len(st.delta_ids):
            main_ids = np.concatenate([main_ids, st.delta_ids[rows]])
            scores = np.concatenate([scores, st.delta_floats[rows] @ query.floats[0]])
        return top_hits(main_ids, scores, k)

    def _bits_search(self, st: _State, bits: np.ndarray, n: int, sel) -> tuple[np.ndarray, np.ndarray]:
        n = max(1, min(n, len(st.main_ids)))
        if len(st.main_ids) == 0:
            return _EMPTY, _EMPTY
        params = faiss.SearchParameters(sel=sel) if sel is not None else None
        dist, ids = st.bits.search(bits, n, params=params)
        keep = ids[0] >= 0
        return ids[0][keep], dist[0][keep].astype(np.int64)

    def _ivf_search(self, st: _State, floats: np.ndarray, n: int, sel) -> np.ndarray:
        whole = n >= len(st.main_ids) - len(st.tombstones)  # asked for everything: visit every list
        n = max(1, min(n, len(st.main_ids)))
        nprobe = faiss.extract_index_ivf(st.main).nlist if whole else st.main.nprobe
        params = faiss.SearchParametersIVF(nprobe=nprobe, sel=sel)
        _, ids = st.main.search(floats, n, params=params)
        return ids[0][ids[0] >= 0]

    def _search_subset(self, st: _State, query: Query, k: int, allowed: np.ndarray, binary: bool) -> Hits:
        """Exact over a small filtered subset (its floats read from the source)."""
        if len(allowed) == 0 or k <= 0:
            return no_hits()
        floats = _floats_of(st, allowed)
        if binary:
            dist = np.bitwise_count(np.bitwise_xor(np.packbits(floats > 0, axis=1), query.bits)).sum(axis=1)
            keep = np.argsort(dist, kind="stable")[: k * self.settings.binary_rerank]
            allowed, floats = allowed[keep], floats[keep]
        return top_hits(allowed, floats @ query.floats[0], k)

    # ---- persistence -----------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """A new generation: the main tier's files (named by its token, written only when the main changed),
        the small arrays (live ids, tombstones, delta), then the manifest, switched atomically; then clean up."""
        st = self._state
        folder.mkdir(parents=True, exist_ok=True)
        old = _read_manifest(folder) or {}
        generation = int(old.get("generation", 0)) + 1
        old_files = old.get("files", {}) if old.get("format") == FORMAT else {}
        files: dict[str, dict] = {}
        main_files = {"bits": f"bits-{st.token}.faiss", "floats": f"floats-{st.token}.npy"}
        if st.main is not None:
            main_files["main"] = f"main-{st.token}.faiss"
        for role, name in main_files.items():
            kept = old_files.get(role)
            if kept and kept["name"] == name and (folder / name).is_file():
                files[role] = kept  # the same main as last saved: not rewritten, nor re-hashed
                continue
            with atomic_path(folder / name) as tmp:
                if role == "bits":
                    faiss.write_index_binary(st.bits, str(tmp))
                elif role == "main":
                    faiss.write_index(st.main, str(tmp))
                else:
                    with open(tmp, "wb") as f:
                        np.save(f, np.asarray(st.table.floats(st.main_ids), np.float32))
            files[role] = {"name": name, "sha256": sha256_file(folder / name)}
        arrays = f"arrays-{generation}.npz"
        with atomic_path(folder / arrays) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, item_ids=st.item_ids, image_ids=st.image_ids, main_ids=st.main_ids,
                         tombstones=st.tombstones, delta_ids=st.delta_ids, delta_floats=st.delta_floats,
                         center=self.codec.center)
        files["arrays"] = {"name": arrays, "sha256": sha256_file(folder / arrays)}
        manifest = {"format": FORMAT, "generation": generation, "model": self.model, "dim": self.dim,
                    "kind": self.kind, "token": st.token, "count": len(st.item_ids),
                    "tombstones": len(st.tombstones), "delta": len(st.delta_ids), "files": files}
        atomic_write_bytes(folder / MANIFEST, json.dumps(manifest, indent=2).encode())
        keep = {MANIFEST, *(entry["name"] for entry in files.values())}
        for path in folder.iterdir():  # old generations (open memory maps of them stay valid), killed saves' temps
            stale = not path.name.startswith(".") or path.name.endswith(".tmp")
            if path.name not in keep and stale:
                path.unlink(missing_ok=True)

    @classmethod
    def load_generation(cls, folder: Path, manifest: dict, settings: Settings) -> "TieredIndex":
        """The files `manifest` names, verified against their checksums; the floats memory-mapped."""
        try:
            paths = {role: folder / entry["name"] for role, entry in manifest["files"].items()}
            for role, entry in manifest["files"].items():
                if sha256_file(paths[role]) != entry["sha256"]:
                    raise IndexCorruptError(f"{paths[role]}: checksum mismatch (file damaged)")
            with np.load(paths["arrays"], allow_pickle=False) as z:
                a = {k: z[k] for k in z.files}
            index = cls(Codec(center=a["center"].astype(np.float32)), settings, manifest["kind"],
                        model=manifest.get("model", ""))
            rows = np.load(paths["floats"], mmap_mode="r", allow_pickle=False)
            main = faiss.read_index(str(paths["main"])) if "main" in paths else None
            if main is not None:
                main.nprobe = min(settings.ivf_nprobe, faiss.extract_index_ivf(main).nlist)
            bits = faiss.read_index_binary(str(paths["bits"]))
        except IndexCorruptError:
            raise
        except (OSError, KeyError, ValueError, RuntimeError) as e:
            raise IndexCorruptError(f"{folder}: unreadable index ({type(e).__name__}: {e})") from None
        delta = a["delta_floats"].astype(np.float32).reshape(-1, index.dim)
        index._state = replace(index._state, main=main, bits=bits, table=FloatTable(a["main_ids"], rows),
                               main_ids=a["main_ids"], tombstones=a["tombstones"], item_ids=a["item_ids"],
                               image_ids=a["image_ids"], token=manifest["token"])
        index._put_delta(a["delta_ids"], delta)
        return index

    def describe(self) -> dict:
        """Model, size, kind (float: ivfpq or binary codes; binary: exact Hamming), tombstones and delta."""
        st = self._state
        return {"model": self.model, "items": len(st.item_ids), "dim": self.dim, "float": self.kind,
                "binary": "exact", "tombstones": int(len(st.tombstones)), "delta": int(len(st.delta_ids))}


def _new_bits(dim: int) -> faiss.IndexBinary:
    return faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(8 * ((dim + 7) // 8)))


def _isin_sorted(values: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    if len(sorted_ids) == 0 or len(values) == 0:
        return np.zeros(len(values), bool)
    pos = np.minimum(np.searchsorted(sorted_ids, values), len(sorted_ids) - 1)
    return sorted_ids[pos] == values


def _floats_of(st: _State, ids: np.ndarray) -> np.ndarray:
    """Floats of live ids: the delta's row when the id is there (a re-added id), else the main tier's."""
    if len(st.delta_ids) == 0:
        return st.table.floats(ids)
    out = np.empty((len(ids), st.delta_floats.shape[1]), np.float32)
    in_delta = _isin_sorted(ids, st.delta_ids)
    out[in_delta] = st.delta_floats[np.searchsorted(st.delta_ids, ids[in_delta])]
    if (~in_delta).any():
        out[~in_delta] = st.table.floats(ids[~in_delta])
    return out


def _read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise IndexCorruptError(f"{path}: unreadable manifest ({e})") from None
