"""Every tunable setting of viscover, declared once with its default and help.

Settings come from (later wins): the defaults below, `<home>/viscover.toml`, environment variables
`VISCOVER_<NAME>` and explicit overrides (command-line options). Unknown keys are rejected, so a typo is an error,
not a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from viscover.errors import ConfigError

CONFIG_FILE = "viscover.toml"


def setting(default: Any, help: str) -> Any:
    """A dataclass field with its help text (lists and dicts get a fresh copy per instance)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


_s = setting


@dataclass(frozen=True)
class Settings:
    """Typed settings; see `viscover info --settings` or the README for each one's meaning."""

    model: str = _s("efficientnet-lite0", "Embedding model: a registry name, onnx:PATH, hf:NAME_OR_DIR or a model dir.")
    db: str = _s("", "Catalogue database URL (SQLAlchemy); empty means SQLite at <home>/catalog.sqlite.")
    sqlite_mmap_mb: int = _s(1024, "SQLite reads the catalogue file through a memory map of up to this many MiB "
                             "(0: read() calls): cold item reads at 1M items took 1.3 instead of 2.3 ms per 20 items.")
    batch_size: int = _s(4, "Images per inference call (small batches measured fastest on CPU: cache-friendly).")
    workers: int = _s(0, "Embedding worker processes; 0 means one per CPU core.")
    ingest_threads: int = _s(8, "Threads reading, hashing and downloading images during ingest.")
    max_image_pixels: int = _s(80_000_000, "Refuse images with more pixels than this (decompression bombs).")
    max_image_bytes: int = _s(64 * 1024 * 1024, "Refuse image files or downloads larger than this many bytes.")
    url_timeout: float = _s(20.0, "Seconds an image URL download may take in all (every redirect and read); a "
                                  "slower one is cut off.")
    url_downloads: int = _s(4, "Image URLs the server downloads at once (search by URL); more are answered 503 at "
                               "once, to retry later.")
    url_allow_hosts: str = _s("", "Comma-separated host names, IPs or CIDRs that image URLs may reach although they "
                                  "are not public (loopback, private, link-local); '*' allows all. Empty: public "
                                  "addresses only (SSRF guard).")
    image_roots: str = _s("", "Comma-separated extra folders that manifest paths may point into; empty: only the "
                              "manifest's own folder.")
    shard_size: int = _s(2048, "Embeddings written per shard file (the unit of resumption after a crash).")
    vector_import_batch: int = _s(16_384, "Rows read per batch by `ingest-vectors` (one batch of vectors in RAM at "
                                  "a time).")
    index_build_batch: int = _s(65_536, "Stored vectors read per batch when an index is rebuilt (streamed from "
                                "the memory-mapped shards: memory beyond the index itself stays about this many "
                                "vectors).")
    index_backend: str = _s("faiss", "Vector index backend, by its registered name (viscover.index.registry): faiss.")
    hnsw_threshold: int = _s(50_000, "Vectors above which the float index uses HNSW instead of exact search.")
    hnsw_m: int = _s(32, "HNSW graph degree (M).")
    hnsw_ef_construction: int = _s(80, "HNSW efConstruction: build-time beam width.")
    hnsw_ef_search: int = _s(256, "HNSW efSearch: query-time beam width (recall vs latency).")
    binary_hnsw_threshold: int = _s(2_000_000, "Codes above which the binary index uses HNSW instead of exact Hamming.")
    binary_rerank: int = _s(20, "Binary search fetches k times this many by Hamming, then re-ranks them by float.")
    compact_ratio: float = _s(0.2, "Rebuild an HNSW index when this fraction of it is deleted (tombstoned).")
    memory_budget: str = _s("", "RAM the vector index of one model may use (e.g. 2GB, 512MB, or bytes); empty: no "
                                "limit (exact search up to hnsw_threshold, else HNSW). With a budget, the first of "
                                "exact, HNSW, IVF-PQ and binary codes that fits is chosen: `viscover index --plan`.")
    index_kind: str = _s("auto", "Float index kind: auto (chosen by size and memory_budget), exact, hnsw, ivfpq "
                                 "(product-quantised codes) or binary (sign bits); ivfpq and binary keep codes in "
                                 "RAM and re-rank by exact floats memory-mapped from disk.")
    ivf_nprobe: int = _s(32, "IVF-PQ: inverted lists visited per query (recall vs latency).")
    pq_m: int = _s(0, "IVF-PQ: sub-quantizers, i.e. code bytes per item (must divide dim); 0: the largest divisor of "
                      "dim up to dim/8.")
    codes_rerank: int = _s(20, "IVF-PQ and binary kinds: float search fetches k times this many candidates by their "
                               "codes, then re-ranks them by exact floats.")
    delta_max: int = _s(10_000, "IVF-PQ and binary kinds: items added since the last merge above which `index` folds "
                                "the delta into the main index (removals: compact_ratio).")
    filter_exact_max: int = _s(20_000, "Filtered searches over at most this many items score just those items "
                                       "exactly; larger filters pass a FAISS ID selector to the index search.")
    dedup_threshold: float = _s(0.05, "Collapse results whose cosine distance to a better result is below this "
                                "(calibrated by benchmarks/dedup_calibration.py).")
    weak_match_score: float = _s(0.40, "A search by an image whose best score is below this is flagged as a weak "
                                       "match (nothing in the catalogue is close). Measured by "
                                       "benchmarks/weak_match.py: new photos of catalogued products scored "
                                       "0.44-0.95 (1st-99th percentile), photos unlike the catalogue 0.24-0.38.")
    item_cache_items: int = _s(200_000, "Items kept in memory for searches (metadata of results and queries, "
                                        "dropped on any catalogue write); 0: read every result from the database.")
    default_k: int = _s(10, "Results returned by search when k is not given.")
    related_cache_entries: int = _s(10_000, "Related-items answers a server keeps for repeated queries (exact: walks "
                                    "are seeded; emptied by any catalogue commit or graph/index/ranker change); "
                                    "0 keeps none.")
    pixie_steps: int = _s(100_000, "Pixie random-walk step budget N per related-items query.")
    pixie_alpha: float = _s(0.5, "Pixie restart probability after each visit.")
    pixie_np: int = _s(2000, "Pixie early stopping: stop once this many items ...")
    pixie_nv: int = _s(4, "... have at least this many visits (0 disables early stopping).")
    pixie_bias: float = _s(0.9, "With a wanted domain, probability that a step keeps to items of that domain.")
    prune_min_coherence: float = _s(0.0, "Graph pruning: drop boards whose items' embeddings are this incoherent "
                                          "(0-1; 0 keeps all).")
    prune_max_board: int = _s(0, "Graph pruning: drop boards with more items than this (0: no limit).")
    prune_popular_degree: int = _s(0, "Graph pruning: items on more boards than this keep their most similar "
                                      "half (0: off).")
    inference_threads: int = _s(0, "ONNX Runtime threads of the query-time models (search by image, detection); "
                                   "0: one per core, except in the server, which then runs one per request "
                                   "(benchmarks/inference_threads.py, 2 cores: at 2 concurrent callers 154 vs "
                                   "107 searches by image/s and 37.4 vs 25.3 detections/s; alone, detection "
                                   "is faster on both cores, 41 vs 50 ms).")
    detector: str = _s("", "Object detector ONNX file (CenterNet, COCO) for shop-the-look; empty: none.")
    detect_min_score: float = _s(0.3, "Detected objects scoring below this are not shown.")
    api_key: str = _s("", "Key that write requests to the server must send (X-API-Key); empty: one is generated "
                          "at start and printed.")
    no_auth: bool = _s(False, "Let the server accept writes without a key (local use only).")
    cors_origins: str = _s("", "Comma-separated origins allowed to call the API from a browser; empty: CORS off.")
    max_manifest_bytes: int = _s(512 * 1024 * 1024, "Refuse uploaded manifests larger than this many bytes.")
    request_threads: int = _s(0, "Server requests handled at once, the rest wait their turn; 0: two per core "
                                 "(measured in benchmarks/serve_load.py: 1.6x the throughput of FastAPI's 40 at "
                                 "16 concurrent searches on 2 cores).")
    serve_workers: int = _s(0, "Server processes sharing the port (`viscover serve --workers`): a search holds one "
                               "process's GIL, so more processes answer more, each with its own copy of the index "
                               "in RAM; 0: one per usable core; 1: one process.")
    request_timeout: float = _s(60.0, "Seconds a server request may take before it is answered with 503.")
    resume_indexing: bool = _s(True, "On start, the server indexes (in a job) catalogue items not indexed yet, e.g. "
                                     "left by a job killed half-way; /api/ready says 503 until they are.")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def help(cls) -> dict[str, tuple[Any, str]]:
        """Name -> (default, help) for documentation and `info --settings`."""
        return {f.name: (f.default, f.metadata["help"]) for f in dataclasses.fields(cls)}

    @classmethod
    def load(cls, home: Path | None = None, overrides: Mapping[str, Any] | None = None,
             environ: Mapping[str, str] | None = None) -> "Settings":
        """Defaults, then `<home>/viscover.toml`, then `VISCOVER_*` variables, then `overrides` (None: skipped)."""
        values: dict[str, Any] = {}
        if home is not None and (home / CONFIG_FILE).is_file():
            path = home / CONFIG_FILE
            try:
                values.update(tomllib.loads(path.read_text()))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise ConfigError(f"{path}: not valid TOML ({e}); fix or delete the file") from e
            _check_keys(values, str(path))
        env = os.environ if environ is None else environ
        for name in cls.names():
            var = f"VISCOVER_{name.upper()}"
            if var in env:
                values[name] = env[var]
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = value
        _check_keys(values, "settings")
        return cls(**{k: _coerce(k, v) for k, v in values.items()})

    def replace(self, **changes: Any) -> "Settings":
        _check_keys(changes, "settings")
        return dataclasses.replace(self, **{k: _coerce(k, v) for k, v in changes.items()})


_TYPES = {f.name: type(f.default) for f in dataclasses.fields(Settings)}


def save_settings(home: Path, changes: Mapping[str, Any]) -> Path:
    """Write settings into `<home>/viscover.toml`, keeping the others there, so every later command on the home
    uses them (e.g. the demo saves its detector for `viscover detect`)."""
    _check_keys(changes, "settings")
    path = Path(home) / CONFIG_FILE
    values = tomllib.loads(path.read_text()) if path.is_file() else {}
    values.update({k: _coerce(k, v) for k, v in changes.items()})
    lines = [f"{k} = {json.dumps(v)}" for k, v in sorted(values.items())]  # JSON scalars are TOML scalars
    path.write_text("\n".join(lines) + "\n")
    return path


def _check_keys(values: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(values) - set(_TYPES))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_TYPES))}")


def _coerce(name: str, value: Any) -> Any:
    kind = _TYPES[name]
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is bool:
            return str(value).lower() in ("1", "true", "yes", "on")
        return kind(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"setting {name}={value!r}: expected {kind.__name__}") from e
