"""Reading embeddings computed elsewhere, in batches: a Parquet file (columns id, vector as a list or fixed-size
list of numbers, optional model) or an .npy of vectors (N x dim, memory-mapped) with an ids file (.npy, .txt one id
a line, or .csv with an id column). Only one batch is in RAM at a time; bad rows come back with their reason."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from viscover.errors import BadManifestError


@dataclass
class VectorBatch:
    """Rows `start`+1.. of a vector file: the usable rows' ids and vectors, and the bad rows' (row, reason)."""

    keys: list[str]
    vectors: np.ndarray  # (len(keys), dim) float32
    rows: np.ndarray  # 1-based row number of each usable row
    bad: list[tuple[int, str]] = field(default_factory=list)


class VectorFile:
    """One file of vectors (and its ids file for .npy), checked up front: its size, width and model names."""

    def __init__(self, path: Path, dim: int, *, ids: Path | None = None):
        self.path, self.dim, self.ids_path = Path(path), dim, ids
        self.models: list[str] = []  # distinct model names the file declares (Parquet's model column)
        suffix = self.path.suffix.lower()
        if not self.path.is_file():
            raise BadManifestError(f"{self.path}: no such file")
        if suffix == ".parquet":
            self._open_parquet()
        elif suffix == ".npy":
            self._open_npy()
        else:
            raise BadManifestError(f"{self.path}: vectors are read from .parquet or .npy files (with an ids file "
                                   "for .npy)")

    # ---- Parquet ---------------------------------------------------------------------------------------------
    def _open_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            # no pre-buffering, a buffered stream: memory stays about one row group, not the whole file
            self._parquet = pq.ParquetFile(self.path, pre_buffer=False, buffer_size=1 << 20)
        except (pa.ArrowException, OSError) as e:
            raise BadManifestError(f"{self.path}: not a readable Parquet file ({e})") from None
        schema = self._parquet.schema_arrow
        for column in ("id", "vector"):
            if column not in schema.names:
                raise BadManifestError(f"{self.path}: no {column!r} column (columns: {', '.join(schema.names)}); "
                                       "a vector file has id, vector and optionally model")
        kind = schema.field("vector").type
        if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)) \
                or not (pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)):
            raise BadManifestError(f"{self.path}: the vector column holds {kind}, not lists of numbers")
        if pa.types.is_fixed_size_list(kind) and kind.list_size != self.dim:
            raise BadManifestError(f"{self.path}: vectors have {kind.list_size} values, the model's have {self.dim}")
        if "model" in schema.names:
            models = pq.read_table(self.path, columns=["model"]).column("model").unique().drop_null()
            self.models = sorted(str(m) for m in models.to_pylist())
        self.rows = self._parquet.metadata.num_rows

    def _parquet_batches(self, batch_rows: int) -> Iterator[VectorBatch]:
        import pyarrow as pa

        start = 0
        for record in self._parquet.iter_batches(batch_size=batch_rows, columns=["id", "vector"]):
            keys = record.column("id").cast(pa.string()).to_pylist()
            yield self._checked(start, keys, *_rows_of(record.column("vector"), self.dim))
            start += record.num_rows

    # ---- .npy ------------------------------------------------------------------------------------------------
    def _open_npy(self) -> None:
        if self.ids_path is None:
            raise BadManifestError(f"{self.path}: an .npy of vectors needs its ids: --ids FILE (.npy, .txt one id "
                                   "a line, or .csv with an id column), in the same order")
        try:
            self._npy = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:
            raise BadManifestError(f"{self.path}: not a readable .npy file ({e})") from None
        if self._npy.ndim != 2 or not (np.issubdtype(self._npy.dtype, np.floating)
                                       or np.issubdtype(self._npy.dtype, np.integer)):
            raise BadManifestError(f"{self.path}: holds a {self._npy.dtype} array of shape {self._npy.shape}, not "
                                   "vectors (a 2-d array of numbers, one row per id)")
        if self._npy.shape[1] != self.dim:
            raise BadManifestError(f"{self.path}: vectors have {self._npy.shape[1]} values, the model's have "
                                   f"{self.dim}")
        self._keys = _read_ids(Path(self.ids_path))
        if len(self._keys) != len(self._npy):
            raise BadManifestError(f"{self.path}: {self.path.name} holds {len(self._npy)} vectors but "
                                   f"{Path(self.ids_path).name} {len(self._keys)} ids; they must match row for row")
        self.rows = len(self._npy)

    def _npy_batches(self, batch_rows: int) -> Iterator[VectorBatch]:
        for start in range(0, self.rows, batch_rows):
            vectors = np.asarray(self._npy[start:start + batch_rows], np.float32)
            yield self._checked(start, self._keys[start:start + batch_rows], vectors,
                                np.arange(len(vectors)), [])

    # ---- both ------------------------------------------------------------------------------------------------
    def batches(self, batch_rows: int) -> Iterator[VectorBatch]:
        """The file's rows, `batch_rows` at a time."""
        if hasattr(self, "_parquet"):
            return self._parquet_batches(batch_rows)
        return self._npy_batches(batch_rows)

    def _checked(self, start: int, keys: list, vectors: np.ndarray, rows: np.ndarray,
                 bad: list[tuple[int, str]]) -> VectorBatch:
        """Drop rows without an id or with NaN/infinite values; row numbers become 1-based file rows."""
        bad = [(start + r + 1, why) for r, why in bad]
        finite = np.isfinite(vectors).all(axis=1)
        named = np.array([k is not None and str(k).strip() != "" for k in (keys[r] for r in rows)], bool)
        for r in rows[~finite & named]:
            bad.append((start + int(r) + 1, "the vector has NaN or infinite values"))
        for r in rows[~named]:
            bad.append((start + int(r) + 1, "no id"))
        keep = finite & named
        rows = rows[keep]
        return VectorBatch([str(keys[r]).strip() for r in rows], np.ascontiguousarray(vectors[keep]),
                           rows + start + 1, sorted(bad))


def _rows_of(column, dim: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """(vectors, their 0-based rows, bad rows) of an Arrow list column; one copy of the batch, no per-row loop
    unless some rows are null or of another length."""
    import pyarrow as pa

    n = len(column)
    null = column.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_fixed_size_list(column.type):
        values = column.values.slice(column.offset * dim, n * dim)
        vectors = values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(n, dim)
        rows = np.nonzero(~null)[0]
        return vectors[rows], rows, [(int(r), "no vector") for r in np.nonzero(null)[0]]
    offsets = column.offsets.to_numpy()
    lengths = np.diff(offsets)
    values = column.values
    if not null.any() and (lengths == dim).all():
        flat = values.slice(offsets[0], n * dim).to_numpy(zero_copy_only=False)
        return flat.astype(np.float32, copy=False).reshape(n, dim), np.arange(n), []
    bad, rows, parts = [], [], []
    for r in range(n):
        if null[r]:
            bad.append((r, "no vector"))
        elif lengths[r] != dim:
            bad.append((r, f"the vector has {lengths[r]} values, the model's vectors have {dim}"))
        else:
            rows.append(r)
            parts.append(values.slice(offsets[r], dim).to_numpy(zero_copy_only=False))
    vectors = np.asarray(parts, np.float32).reshape(len(rows), dim)
    return vectors, np.asarray(rows, np.int64), bad


def _read_ids(path: Path) -> list[str]:
    """Ids, one per vector: an .npy array, a .csv with an `id` column, or text with one id a line."""
    if not path.is_file():
        raise BadManifestError(f"{path}: no such ids file")
    try:
        if path.suffix.lower() == ".npy":
            ids = np.load(path, allow_pickle=False)
            if ids.ndim != 1:
                raise BadManifestError(f"{path}: ids must be a 1-d array, not of shape {ids.shape}")
            return [str(i) for i in ids.tolist()]
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                if "id" not in (reader.fieldnames or []):
                    raise BadManifestError(f"{path}: no 'id' column")
                return [row["id"] for row in reader]
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise BadManifestError(f"{path}: unreadable ids file ({e})") from None
