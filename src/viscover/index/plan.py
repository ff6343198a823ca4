"""Which float index kind a catalogue gets, from its size, the vectors' width and the `memory_budget` setting: a
pure function (`plan_index`), so the choice is testable and shown before anything is built (`index --plan`).

Kinds, most accurate first: exact (brute force, small catalogues), HNSW (floats and a graph in RAM), IVF-PQ
(product-quantised codes in RAM, trained on a seeded sample; exact floats memory-mapped from disk re-rank a short
list) and binary (sign bits in RAM, the same float re-rank). Estimates count what grows with the catalogue (vectors,
codes, graph links, ids); fixed costs such as IVF centroids (nlist x dim floats) are left out."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

from viscover.config import Settings
from viscover.errors import ConfigError

KINDS = ("exact", "hnsw", "ivfpq", "binary")
COMPRESSED = ("ivfpq", "binary")  # codes in RAM, floats re-rank from disk (viscover.index.tiered)
ID_BYTES = 16  # live item id + image id per item
IDMAP_BYTES = 48  # a FAISS IDMap2 entry: the id and its reverse-map node
TRAIN_PER_CENTROID = 39  # FAISS warns below 39 training points per k-means centroid
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


@dataclass(frozen=True)
class IndexPlan:
    """The kind chosen for `items` vectors of `dim` floats, its parameters, estimated RAM and disk, and why."""

    kind: str
    items: int
    dim: int
    ram_per_item: int
    disk_per_item: int
    reason: str
    params: dict = field(default_factory=dict)

    @property
    def ram_bytes(self) -> int:
        return self.ram_per_item * self.items

    @property
    def disk_bytes(self) -> int:
        return self.disk_per_item * self.items

    def to_dict(self) -> dict:
        return {**asdict(self), "ram_bytes": self.ram_bytes, "disk_bytes": self.disk_bytes}


def plan_index(items: int, dim: int, settings: Settings) -> IndexPlan:
    """The kind for this catalogue: `index_kind` if forced; with no `memory_budget`, exact up to `hnsw_threshold`
    items and HNSW above; with a budget, the first of exact (small catalogues only), HNSW, IVF-PQ and binary whose
    estimated RAM fits it, else binary (the smallest) with a reason that says it does not fit."""
    forced = settings.index_kind.strip().lower()
    if forced not in ("auto", *KINDS):
        raise ConfigError(f"index_kind {settings.index_kind!r} is not one of auto, {', '.join(KINDS)}; set "
                          "index_kind in viscover.toml or VISCOVER_INDEX_KIND")
    budget = parse_bytes(settings.memory_budget)
    small = items <= settings.hnsw_threshold
    if forced != "auto":
        return _plan(forced, items, dim, settings, f"index_kind is set to {forced}")
    if not budget:
        kind = "exact" if small else "hnsw"
        why = (f"{items:,} items <= hnsw_threshold {settings.hnsw_threshold:,}: exact search" if small else
               f"{items:,} items > hnsw_threshold {settings.hnsw_threshold:,}, no memory_budget: HNSW")
        return _plan(kind, items, dim, settings, why)
    said = f"memory_budget {settings.memory_budget} ({human(budget)})"
    for kind in (("exact",) if small else ()) + ("hnsw", "ivfpq", "binary"):
        plan = _plan(kind, items, dim, settings, "")
        if plan.ram_bytes <= budget:
            return _plan(kind, items, dim, settings,
                         f"{human(plan.ram_bytes)} in RAM fits the {said}" + _skipped(kind, small))
    plan = _plan("binary", items, dim, settings, "")
    return _plan("binary", items, dim, settings, f"no kind fits the {said}: binary codes, the smallest, need "
                 f"{human(plan.ram_bytes)} (exceeds it); raise memory_budget or expect swapping")


def _skipped(kind: str, small: bool) -> str:
    before = [k for k in (("exact",) if small else ()) + ("hnsw", "ivfpq") if KINDS.index(k) < KINDS.index(kind)]
    return f" ({', '.join(before)} would not)" if before else ""


def _plan(kind: str, n: int, dim: int, s: Settings, reason: str) -> IndexPlan:
    floats, bits = 4 * dim, (dim + 7) // 8
    live = ID_BYTES + 2 * IDMAP_BYTES  # ids, and the float and binary IDMap2 of FaissIndex
    if kind == "exact":
        return IndexPlan(kind, n, dim, floats + bits + live, floats + bits + 3 * ID_BYTES, reason)
    if kind == "hnsw":
        links = math.ceil(2 * s.hnsw_m * 4 * 1.05) + 12  # level 0 has 2M links; upper levels ~5% more; offsets
        return IndexPlan(kind, n, dim, floats + bits + links + live, floats + bits + links + 3 * ID_BYTES, reason,
                         {"m": s.hnsw_m, "ef_construction": s.hnsw_ef_construction, "ef_search": s.hnsw_ef_search})
    # compressed kinds: codes and ids in RAM (ids in the main index and the float table's), floats on disk
    ram_ids = ID_BYTES + 8 + 8
    disk = floats + 8 + bits + 8 + ID_BYTES
    if kind == "binary":
        return IndexPlan(kind, n, dim, bits + 8 + ram_ids, disk, reason, {"rerank": s.codes_rerank})
    params = ivfpq_params(n, dim, s)
    code = math.ceil(params["pq_m"] * params["nbits"] / 8)
    return IndexPlan(kind, n, dim, code + 8 + bits + 8 + ram_ids, disk + code + 8, reason, params)


def ivfpq_params(n: int, dim: int, s: Settings) -> dict:
    """nlist ~ 4 sqrt(n) (at least 39 training points each), pq_m code bytes (dividing dim), code bits (8, fewer
    when too few vectors train 256 centroids), the seeded training sample size and nprobe."""
    nlist = max(1, min(round(4 * math.sqrt(max(n, 1))), n // TRAIN_PER_CENTROID))
    pq_m = s.pq_m or max(d for d in range(1, max(1, dim // 8) + 1) if dim % d == 0)
    if dim % pq_m:
        raise ConfigError(f"pq_m {pq_m} does not divide the vectors' dimension {dim}; set pq_m to a divisor of "
                          f"{dim}, or 0 to choose one")
    nbits = 8 if n >= 256 * TRAIN_PER_CENTROID else max(1, min(8, int(math.log2(max(2, n // TRAIN_PER_CENTROID)))))
    train = min(n, max(TRAIN_PER_CENTROID * nlist, 2**nbits * TRAIN_PER_CENTROID, 10_000))
    return {"nlist": nlist, "pq_m": pq_m, "nbits": nbits, "nprobe": min(s.ivf_nprobe, nlist), "train_size": train,
            "rerank": s.codes_rerank}


def parse_bytes(text: str) -> int:
    """'2GB', '512 MB', '4GiB', '1.5gb' or a plain number of bytes -> bytes; '' -> 0 (no budget)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text or "0")
    unit = _UNITS.get(m.group(2).lower()) if m else None
    if unit is None:
        raise ConfigError(f"memory_budget {text!r} is not a size; write it like 2GB, 512MB or a number of bytes")
    return int(float(m.group(1)) * unit)


def human(n: float) -> str:
    """Bytes for people: 1.3 GB, 64.0 MB."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
