"""Stored embeddings of one model: shards of (image id, raw vector), memory-mapped, written atomically.

A shard is two .npy files, `shard-NNNNNN.f32.npy` (float32 vectors, N x dim) and `shard-NNNNNN.ids.npy` (int64
image ids), read with np.load(mmap_mode="r"): the vectors stay on disk and in the page cache, never one RAM copy
per process. The vectors file is written first and the ids file last, each atomically: a shard exists once its ids
file does, so a crash loses at most the shard being written (an orphan vectors file, ignored and cleaned up).
Later shards win for repeated ids. Homes written before this format hold `shard-NNNNNN.npz` shards (ids and
vectors in one uncompressed archive): they are still read as they are, and `compact` rewrites them as .npy shards.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from viscover.fsutil import atomic_path, atomic_write_bytes

_SHARD = re.compile(r"^shard-(\d{6})\.(npz|ids\.npy|f32\.npy)$")


@dataclass(frozen=True)
class _IdMap:
    """Where the live vector of each stored id is: ids sorted, with their shard (index into `shards`) and row."""

    shards: tuple[Path, ...]  # the ids file (.ids.npy) or archive (.npz) of each shard, in order
    ids: np.ndarray  # (n,) int64 sorted unique
    shard: np.ndarray  # (n,) int32
    row: np.ndarray  # (n,) int64


class EmbeddingStore:
    def __init__(self, folder: Path):
        self.folder = folder
        self._map: _IdMap | None = None
        self._map_key: tuple | None = None
        self._old: dict[Path, tuple[np.ndarray, np.ndarray]] = {}  # old .npz shards, loaded once

    # ---- files -----------------------------------------------------------------------------------------------
    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if _SHARD.match(p.name))

    def _shards(self) -> list[Path]:
        """Complete shards in order: the ids file of each .npy shard, or the .npz archive of an old one."""
        files = self._files()
        names = {p.name for p in files}
        return [p for p in files if p.name.endswith(".npz") or
                (p.name.endswith(".ids.npy") and p.name.replace(".ids.npy", ".f32.npy") in names)]

    @staticmethod
    def _vectors_file(shard: Path) -> Path:
        return shard.with_name(shard.name.replace(".ids.npy", ".f32.npy"))

    def _read(self, shard: Path) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of a shard: memory-mapped for .npy shards, in RAM for an old .npz archive (read once)."""
        if shard.name.endswith(".npz"):
            if shard not in self._old:
                with np.load(shard, allow_pickle=False) as z:
                    self._old[shard] = (z["ids"], z["vectors"])
            return self._old[shard]
        ids = np.load(shard, allow_pickle=False)
        return ids, np.load(self._vectors_file(shard), mmap_mode="r", allow_pickle=False)

    @staticmethod
    def _read_ids(shard: Path) -> np.ndarray:
        if shard.name.endswith(".npz"):
            with np.load(shard, allow_pickle=False) as z:
                return z["ids"]
        return np.load(shard, allow_pickle=False)

    # ---- metadata --------------------------------------------------------------------------------------------
    def write_meta(self, meta: dict) -> None:
        atomic_write_bytes(self.folder / "meta.json", json.dumps(meta, indent=2).encode())

    def meta(self) -> dict:
        path = self.folder / "meta.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    # ---- writing ---------------------------------------------------------------------------------------------
    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Write one new shard: the vectors file, then the ids file that makes it visible (each atomically)."""
        if len(ids) == 0:
            return
        path = self._new_shard()
        with atomic_path(self._vectors_file(path)) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(vectors, np.float32))
        self._commit_ids(path, ids)

    def _new_shard(self) -> Path:
        """The ids path of the next shard number (after every file present, orphans included)."""
        files = self._files()
        number = max((int(_SHARD.match(p.name).group(1)) for p in files), default=0) + 1
        return self.folder / f"shard-{number:06d}.ids.npy"

    def _commit_ids(self, path: Path, ids: np.ndarray) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(ids, np.int64))

    def compact(self, max_shards: int = 64) -> None:
        """Merge shards into one when there are many (fewer files to open), or when old .npz shards are left
        (rewritten as .npy); streamed through a memory-mapped output file, so never all vectors in RAM. Orphan
        vectors files of crashed writes are removed. The caller holds the home's write lock."""
        shards = self._shards()
        old = any(s.name.endswith(".npz") for s in shards)
        if len(shards) > max_shards or old:
            id_map = self._id_map()
            path = self._new_shard()
            with atomic_path(self._vectors_file(path)) as tmp:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(id_map.ids), self.dim))
                row = 0
                for ids, vecs in self.iter_batches(65_536, sort=True):
                    out[row:row + len(ids)] = vecs
                    row += len(ids)
                out.flush()
                del out
            self._commit_ids(path, id_map.ids)
            for shard in shards:
                if not shard.name.endswith(".npz"):
                    self._vectors_file(shard).unlink()
                shard.unlink()
        live = {p.name for p in self._shards()}
        for p in self._files():  # vectors files whose ids file never landed (a crash between the two writes)
            if p.name.endswith(".f32.npy") and p.name.replace(".f32.npy", ".ids.npy") not in live:
                p.unlink(missing_ok=True)
        self._map, self._old = None, {}

    # ---- reading ---------------------------------------------------------------------------------------------
    def _id_map(self) -> _IdMap:
        """The id -> (shard, row) map, built from the ids files only (8 bytes an id), rebuilt when shards change."""
        shards = self._shards()
        key = tuple((p.name, p.stat().st_mtime_ns) for p in shards)
        if self._map is not None and self._map_key == key:
            return self._map
        parts = [self._read_ids(p) for p in shards]
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        shard = np.repeat(np.arange(len(parts), dtype=np.int32), [len(p) for p in parts])
        row = np.concatenate([np.arange(len(p), dtype=np.int64) for p in parts]) if parts else np.zeros(0, np.int64)
        # keep the last occurrence of each id (later shards, later rows win), sorted by id
        _, last = np.unique(ids[::-1], return_index=True)
        pick = len(ids) - 1 - last
        self._map = _IdMap(tuple(shards), ids[pick], shard[pick], row[pick])
        self._map_key = key
        return self._map

    def __len__(self) -> int:
        return len(self._id_map().ids)

    @property
    def dim(self) -> int:
        """Width of the stored vectors (0 when none are stored)."""
        shards = self._shards()
        if not shards:
            return 0
        return int(self._read(shards[-1])[1].shape[1])

    def ids(self) -> np.ndarray:
        """Every image id that has a vector, sorted."""
        return self._id_map().ids

    def has(self, ids: np.ndarray) -> np.ndarray:
        """Mask of the ids that have a stored vector."""
        stored = self._id_map().ids
        ids = np.asarray(ids, np.int64)
        if len(stored) == 0:
            return np.zeros(len(ids), bool)
        pos = np.minimum(np.searchsorted(stored, ids), len(stored) - 1)
        return stored[pos] == ids

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of `ids` (in that order, repeats allowed), read from the shards without loading the
        rest; KeyError naming the ids that have none."""
        ids = np.asarray(ids, np.int64)
        id_map = self._id_map()
        if len(ids) == 0:
            return np.zeros((0, self.dim), np.float32)
        found = self.has(ids)
        if not found.all():
            raise KeyError(f"no stored vector for id(s) {ids[~found][:5].tolist()}")
        pos = np.searchsorted(id_map.ids, ids)
        shard, row = id_map.shard[pos], id_map.row[pos]
        out = np.empty((len(ids), self.dim), np.float32)
        for s in np.unique(shard):
            mine = shard == s
            vectors = self._read(id_map.shards[s])[1]
            rows = row[mine]
            order = np.argsort(rows, kind="stable")  # ascending rows: sequential reads of the mapped file
            out[np.nonzero(mine)[0][order]] = vectors[rows[order]]
        return out

    def iter_batches(self, batch_rows: int, *, sort: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of every live stored vector once, at most `batch_rows` at a time, shard by shard (or in
        id order with `sort`); only one batch is in RAM at a time."""
        id_map = self._id_map()
        if sort:
            for start in range(0, len(id_map.ids), batch_rows):
                ids = id_map.ids[start:start + batch_rows]
                yield ids, self.vectors_of(ids)
            return
        for s, shard in enumerate(id_map.shards):
            rows = np.sort(id_map.row[id_map.shard == s])  # rows of this shard not replaced later
            if len(rows) == 0:
                continue
            ids, vectors = self._read(shard)
            for start in range(0, len(rows), batch_rows):
                part = rows[start:start + batch_rows]
                yield ids[part], np.asarray(vectors[part], np.float32)

    def load(self, wanted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) sorted by id, for all ids or only `wanted` (missing ones are simply absent): all in RAM,
        for small sets; prefer `vectors_of` and `iter_batches`."""
        ids = self.ids()
        if wanted is not None:
            ids = ids[np.isin(ids, np.asarray(wanted, np.int64))]
        if len(ids) == 0:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        return ids, self.vectors_of(ids)
