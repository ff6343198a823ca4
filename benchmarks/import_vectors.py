"""Importing a million vectors computed elsewhere, and rebuilding an index from them, next to the raw libraries.

Data: N seeded clustered vectors (a Gaussian mixture, 1,024 clusters; dim 256 by default: the width of a trained
viscover model's head, `viscover train`, rather than the 1,280 of the untrained backbone) with synthetic ids,
written once as a Parquet file (id, vector as fixed_size_list<float32>, model), in row groups of 65,536.

Steps, each in its own process so that its peak RSS (VmHWM) is its own; median of --repeats runs:
  * import_viscover  - what `viscover ingest-vectors` does with the file, without the catalogue lookups: the
                       Parquet read in batches (`VectorFile`), checked, appended as memory-mapped .npy shards
                       (`EmbeddingStore`), compacted. Disk per item is measured on the shards written.
  * import_raw       - the raw libraries: `pyarrow.parquet.read_table` of the whole file, to numpy, `np.save`.
  * rebuild_viscover - `index --rebuild`'s path (`sync_index(rebuild=True)`): the stored vectors streamed in
                       batches of `index_build_batch` into an exact float index + binary index, saved.
  * rebuild_whole    - the same index built the way it was before streaming (all vectors loaded, one
                       `build_index` call), for the memory comparison.
  * rebuild_raw      - raw FAISS: the .npy loaded, normalised, one IndexFlatIP + IndexBinaryFlat filled.

The catalogue side of a million-item import (SQLite rows for a million items without image files) is not
measured here: items must exist before their vectors are imported.

    .venv/bin/python benchmarks/import_vectors.py --json benchmarks/results/import_vectors.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, environment  # noqa: E402

MODEL = "bench-head-256"
STEPS = ("import_viscover", "import_raw", "rebuild_viscover", "rebuild_whole", "rebuild_raw")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return _status_mb("VmHWM")


def _imports() -> None:
    """The libraries every step may use, imported before its clock and memory baseline start."""
    import faiss  # noqa: F401
    import numpy  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import viscover.embed.vector_files  # noqa: F401
    import viscover.embed.vectors  # noqa: F401
    import viscover.index.sync  # noqa: F401


def generate(folder: Path, n: int, dim: int, seed: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1024, dim)).astype(np.float32)
    schema = pa.schema([("id", pa.string()), ("vector", pa.list_(pa.float32(), dim)), ("model", pa.string())])
    with pq.ParquetWriter(folder / "vectors.parquet", schema) as writer:
        for start in range(0, n, 65_536):
            m = min(65_536, n - start)
            vecs = centres[rng.integers(0, 1024, m)] + 0.6 * rng.standard_normal((m, dim)).astype(np.float32)
            writer.write_table(pa.table({
                "id": [f"item-{i:07d}" for i in range(start, start + m)],
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), dim),
                "model": [MODEL] * m}, schema=schema))


def step(name: str, folder: Path, dim: int) -> dict:
    import numpy as np

    from viscover.config import Settings

    settings = Settings(hnsw_threshold=10**12, binary_hnsw_threshold=10**12)  # exact kinds: the streaming is measured
    _imports()
    before = _status_mb("VmRSS")
    store_dir = folder / f"embeddings-{os.getpid()}" if name == "import_viscover" else folder / "embeddings"
    start = time.perf_counter()
    out: dict = {}
    if name == "import_viscover":
        from viscover.embed.vector_files import VectorFile
        from viscover.embed.vectors import EmbeddingStore

        store = EmbeddingStore(store_dir)
        source = VectorFile(folder / "vectors.parquet", dim)
        for batch in source.batches(settings.vector_import_batch):
            ids = np.array([int(k[5:]) for k in batch.keys], np.int64)  # synthetic ids -> image ids
            store.append(ids, batch.vectors)
        store.compact()
        out["rows"] = source.rows
        out["disk_bytes"] = sum(p.stat().st_size for p in store_dir.iterdir())
    elif name == "import_raw":
        import pyarrow.parquet as pq

        table = pq.read_table(folder / "vectors.parquet", columns=["id", "vector"])
        vecs = table.column("vector").combine_chunks().values.to_numpy().reshape(-1, dim)
        np.save(folder / "raw.npy", vecs)
        out["rows"] = len(vecs)
    elif name in ("rebuild_viscover", "rebuild_whole"):
        from viscover.embed.vectors import EmbeddingStore
        from viscover.index.registry import build_index
        from viscover.index.sync import IndexReport, sync_index

        store = EmbeddingStore(store_dir)
        image_ids = store.ids()
        item_ids = np.arange(1, len(image_ids) + 1, dtype=np.int64)

        class Model:
            name, key, centered = MODEL, MODEL, False

        Model.dim = dim
        if name == "rebuild_viscover":
            sync_index(folder / "index", item_ids, image_ids, store, Model(), settings, rebuild=True,
                       report=IndexReport(model=MODEL, key=MODEL))
        else:
            ids, raw = store.load()
            build_index(item_ids, ids, raw, settings, model=MODEL).save(folder / "index-whole")
        out["rows"] = len(item_ids)
    elif name == "rebuild_raw":
        import faiss

        vecs = np.load(folder / "raw.npy")
        centred = vecs - vecs.mean(axis=0)
        floats = centred / np.linalg.norm(centred, axis=1, keepdims=True)
        flat = faiss.IndexFlatIP(dim)
        flat.add(floats)
        binary = faiss.IndexBinaryFlat(dim)
        binary.add(np.packbits(centred > 0, axis=1))
        out["rows"] = flat.ntotal
    out["seconds"] = round(time.perf_counter() - start, 2)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["rss_before_mb"] = round(before, 1)  # after imports: the growth is peak - before
    if name == "import_viscover":
        shutil.rmtree(folder / "embeddings", ignore_errors=True)
        store_dir.rename(folder / "embeddings")
    return out


def run_step(name: str, folder: Path, dim: int) -> dict:
    result = subprocess.run([sys.executable, __file__, "--step", name, "--dir", str(folder), "--dim", str(dim)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        print(json.dumps(step(args.step, Path(args.dir), args.dim)))
        return
    folder = Path(tempfile.mkdtemp(prefix="viscover-import-"))
    try:
        t = time.perf_counter()
        generate(folder, args.n, args.dim, args.seed)
        gen_seconds = time.perf_counter() - t
        runs: dict[str, list[dict]] = {s: [] for s in STEPS}
        for r in range(args.repeats):  # alternating, so that load from other processes hits every step alike
            for name in STEPS:
                runs[name].append(run_step(name, folder, args.dim))
                print(f"repeat {r + 1} {name}: {runs[name][-1]}", file=sys.stderr)
        vector_mb = args.n * args.dim * 4 / 2**20
        summary = {}
        for name, results in runs.items():
            summary[name] = {"seconds_median": statistics.median(x["seconds"] for x in results),
                             "peak_rss_mb_median": statistics.median(x["peak_rss_mb"] for x in results),
                             "growth_mb_median": statistics.median(round(x["peak_rss_mb"] - x["rss_before_mb"], 1)
                                                                   for x in results),
                             "growth_over_vectors": round(statistics.median(x["peak_rss_mb"] - x["rss_before_mb"]
                                                                            for x in results) / vector_mb, 2),
                             "runs": results}
        disk = runs["import_viscover"][-1]["disk_bytes"]
        summary["import_viscover"]["disk_bytes_per_item"] = round(disk / args.n, 1)
        summary["import_viscover"]["items_per_second"] = round(args.n / summary["import_viscover"]["seconds_median"])
        result = {"benchmark": "import_vectors", "n": args.n, "dim": args.dim, "vectors_mb": round(vector_mb, 1),
                  "parquet_mb": round((folder / "vectors.parquet").stat().st_size / 2**20, 1),
                  "generate_seconds": round(gen_seconds, 1), "repeats": args.repeats,
                  "note": "exact float + binary index kinds (the streaming is measured, not an HNSW build); "
                          "other agents shared the 2 cores during the run",
                  "steps": summary, **environment()}
        emit(result, args.json)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
