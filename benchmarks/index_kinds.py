"""Index kinds by memory budget: for each kind the plan can choose (exact, hnsw, ivfpq, binary), viscover's index
next to raw FAISS with the same parameters on the same vectors, in one run.

Per kind: recall@10 against exact ground truth, single-query latency p50/p99 (ms, one query at a time, --threads
FAISS/BLAS threads), build time, RAM per item (the saved files a load reads into memory: all but the memory-mapped
floats of ivfpq/binary; FAISS's id maps add their hash tables on top) and disk per item (all saved files), next to
the plan's estimate. Raw FAISS runs the same structure and parameters directly: IndexFlatIP; IndexHNSWFlat (M,
efConstruction, efSearch); IndexIVFPQ (nlist, m, nbits, nprobe, trained on the same seeded sample) and
IndexBinaryFlat, each fetching k x codes_rerank candidates that numpy re-ranks by exact floats, as viscover does.
Goal from issue 13: viscover within 1.1x of raw FAISS at equal recall.

Data: the seeded Gaussian mixture of benchmarks/search_speed.py (the first n rows of its stream), queries drawn
apart. Run from the repository root:

    .venv/bin/python benchmarks/index_kinds.py --n 100000 --json benchmarks/results/index_kinds.json
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from common import emit, environment  # noqa: E402
from search_speed import Mixture  # noqa: E402

from viscover.config import Settings  # noqa: E402
from viscover.index import build_index, load_index  # noqa: E402
from viscover.index.codec import Codec  # noqa: E402
from viscover.index.plan import plan_index  # noqa: E402
from viscover.index.tiered import SEED  # noqa: E402

K = 10
KINDS = ("exact", "hnsw", "ivfpq", "binary")


def timed_queries(search, queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    found, times = [], []
    for q in queries:
        t = time.perf_counter()
        ids = search(q[None])
        times.append(time.perf_counter() - t)
        found.append(np.pad(ids[:K], (0, K - len(ids[:K])), constant_values=-1))
    return np.stack(found), times


def summary(found: np.ndarray, times: list[float], truth: np.ndarray) -> dict:
    ms = np.array(times) * 1000
    recall = np.mean([len(set(f.tolist()) & set(t.tolist())) / K for f, t in zip(found, truth)])
    return {"recall_at_10": round(float(recall), 4), "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3), "mean_ms": round(float(ms.mean()), 3)}


def rerank(floats: np.ndarray, q: np.ndarray, ids: np.ndarray) -> np.ndarray:
    ids = ids[ids >= 0]
    return ids[np.argsort(-(floats[ids] @ q[0]), kind="stable")[:K]]


def raw_faiss(kind: str, floats: np.ndarray, settings: Settings, plan) -> tuple:
    """(search(q) -> ids, build seconds) of raw FAISS with the plan's structure and parameters; ids are rows."""
    t = time.perf_counter()
    dim = floats.shape[1]
    short = K * settings.codes_rerank
    if kind == "exact":
        index = faiss.IndexFlatIP(dim)
        index.add(floats)
        return (lambda q: index.search(q, K)[1][0]), time.perf_counter() - t
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
        index.add(floats)
        index.hnsw.efSearch = settings.hnsw_ef_search
        return (lambda q: index.search(q, K)[1][0]), time.perf_counter() - t
    if kind == "ivfpq":
        p = plan.params
        index = faiss.IndexIVFPQ(faiss.IndexFlatL2(dim), dim, p["nlist"], p["pq_m"], p["nbits"])
        sample = np.random.default_rng(SEED).choice(len(floats), size=p["train_size"], replace=False)
        index.train(floats[np.sort(sample)])
        index.add(floats)
        index.nprobe = p["nprobe"]
        return (lambda q: rerank(floats, q, index.search(q, short)[1][0])), time.perf_counter() - t
    codes = np.packbits(floats > 0, axis=1)
    index = faiss.IndexBinaryFlat(8 * codes.shape[1])
    index.add(codes)
    return (lambda q: rerank(floats, q, index.search(np.packbits(q > 0, axis=1), short)[1][0])), \
        time.perf_counter() - t


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--threads", type=int, default=1, help="FAISS threads for searches (builds use all cores)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    mix = Mixture(args.dim, 2048, 64, 3.0, 0.2, args.seed)
    raw = mix.database(args.n)
    queries_raw = mix.sample(args.queries + 50, (2, 0))
    ids = np.arange(args.n, dtype=np.int64)
    codec = Codec.fit(raw)  # what viscover centres on: the catalogue mean
    floats, queries = codec.floats(raw), codec.floats(queries_raw)
    gt = faiss.IndexFlatIP(args.dim)
    gt.add(floats)
    truth = gt.search(queries[50:], K)[1]
    del gt
    rows = []
    for kind in args.kinds.split(","):
        settings = Settings(index_kind=kind, hnsw_threshold=10**12 if kind == "exact" else 0)
        plan = plan_index(args.n, args.dim, settings)
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        t = time.perf_counter()
        index = build_index(ids, ids, raw, settings, model="bench")
        build_s = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as tmp:
            index.save(Path(tmp))
            disk = folder_bytes(Path(tmp))
            del index
            gc.collect()
            index = load_index(Path(tmp), settings)
            ram = disk - sum(p.stat().st_size for p in Path(tmp).glob("floats-*.npy"))  # mmapped: not in RAM
            faiss.omp_set_num_threads(args.threads)
            for q in queries_raw[:50]:  # warm-up (not measured)
                index.search(index.encode(q), K)
            encoded = [index.encode(q) for q in queries_raw[50:]]
            it = iter(encoded)
            found, times = timed_queries(lambda q, ix=index, it=it: ix.search(next(it), K).ids, queries[50:])
            ours = summary(found, times, truth)
        del index
        gc.collect()
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        search, raw_build_s = raw_faiss(kind, floats, settings, plan)
        faiss.omp_set_num_threads(args.threads)
        for q in queries[:50]:
            search(q[None])
        found, times = timed_queries(search, queries[50:])
        theirs = summary(found, times, truth)
        del search
        gc.collect()
        row = {"kind": kind, "params": plan.params,
               "viscover": {**ours, "build_s": round(build_s, 2), "ram_bytes_per_item": round(ram / args.n, 1),
                            "disk_bytes_per_item": round(disk / args.n, 1)},
               "raw_faiss": {**theirs, "build_s": round(raw_build_s, 2)},
               "plan_estimate": {"ram_bytes_per_item": plan.ram_per_item, "disk_bytes_per_item": plan.disk_per_item},
               "p50_ratio": round(ours["p50_ms"] / max(theirs["p50_ms"], 1e-9), 2),
               "p99_ratio": round(ours["p99_ms"] / max(theirs["p99_ms"], 1e-9), 2)}
        print(f"{kind}: {row}", file=sys.stderr, flush=True)
        rows.append(row)
    result = {"benchmark": "index_kinds", "n": args.n, "dim": args.dim, "queries": args.queries, "k": K,
              "search_threads": args.threads, "data": mix.describe(), "results": rows,
              "environment": environment({"faiss": faiss.__version__})}
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
