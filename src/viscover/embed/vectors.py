"""Stored embeddings of one model: shards of (image id, raw vector) written atomically.

Each shard is an uncompressed .npz of `ids` (int64) and `vectors` (float32), loaded with allow_pickle=False.
A crash loses at most the shard being written; anything on disk is complete. Later shards win for repeated ids.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from viscover.fsutil import atomic_path, atomic_write_bytes

_SHARD = re.compile(r"^shard-(\d{6})\.npz$")


class EmbeddingStore:
    def __init__(self, folder: Path):
        self.folder = folder

    def _shards(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if _SHARD.match(p.name))

    def write_meta(self, meta: dict) -> None:
        atomic_write_bytes(self.folder / "meta.json", json.dumps(meta, indent=2).encode())

    def meta(self) -> dict:
        path = self.folder / "meta.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Write one new shard (atomically)."""
        if len(ids) == 0:
            return
        shards = self._shards()
        number = int(_SHARD.match(shards[-1].name).group(1)) + 1 if shards else 1
        path = self.folder / f"shard-{number:06d}.npz"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, ids=np.asarray(ids, np.int64), vectors=np.asarray(vectors, np.float32))

    def ids(self) -> np.ndarray:
        """Every image id that has a vector."""
        parts = []
        for shard in self._shards():
            with np.load(shard, allow_pickle=False) as z:
                parts.append(z["ids"])
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def load(self, wanted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) sorted by id, for all ids or only `wanted` (missing ones are simply absent)."""
        id_parts, vec_parts = [], []
        for shard in self._shards():
            with np.load(shard, allow_pickle=False) as z:
                ids, vecs = z["ids"], z["vectors"]
                if wanted is not None:
                    keep = np.isin(ids, wanted)
                    ids, vecs = ids[keep], vecs[keep]
                id_parts.append(ids)
                vec_parts.append(vecs)
        if not id_parts:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids = np.concatenate(id_parts)
        vecs = np.concatenate(vec_parts)
        # keep the last occurrence of each id (later shards win), then sort by id
        _, last = np.unique(ids[::-1], return_index=True)
        order = len(ids) - 1 - last
        return ids[order], vecs[order]

    def compact(self, max_shards: int = 64) -> None:
        """Merge shards into one when there are many (fewer files to open on every load)."""
        shards = self._shards()
        if len(shards) <= max_shards:
            return
        ids, vecs = self.load()
        self.append(ids, vecs)
        for shard in shards:
            shard.unlink()
