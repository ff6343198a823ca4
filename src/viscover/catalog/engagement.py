"""Engagement logs: which items were shown in whose related list, at which position, and what the user did.

A log is a CSV, TSV, JSONL or Parquet file with one row per impression:

    query      the id (catalogue key) of the item whose related list was shown        required
    item       the id of the shown item                                                required
    position   its 1-based position in the list                                        required
    clicked    0/1 (also true/false, yes/no; empty = 0)                                optional
    saved      0/1, as clicked                                                         optional
    user       who saw it                                                              optional
    timestamp  when, kept as given (also accepted as `ts`)                             optional
    source     the traffic slice: "random" marks lists shown in random order, which    optional
               the ranker uses to measure position bias (viscover.rank.debias)

Rows are streamed; a bad row (unknown item id, a position that is not a positive integer, a missing required
value, a shown item equal to its query) becomes a Problem naming the file and line and is skipped, never stopping
the rows after it. Good rows are inserted in batches, one transaction per batch, so an interrupted ingest keeps
what it already wrote. Files are read by `viscover.catalog.tables`; the SQL is the store's (CatalogStore.add_impressions
and kin).

Re-ingesting the same file appends its impressions again (an event log has no natural key: the same user can
see the same list twice), so counts double; `clear_engagement` empties the log before a full reload.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Iterator

from viscover.catalog.records import RANDOM_SOURCE, EngagementLog, EngagementRow, Problem
from viscover.catalog.store import CatalogStore
from viscover.catalog.tables import check_text, open_table, text
from viscover.errors import BadManifestError

__all__ = ["REQUIRED", "OPTIONAL", "RANDOM_SOURCE", "BATCH", "EngagementRow", "EngagementReport", "EngagementLog",
           "read_engagement_log", "ingest_engagement", "engagement_rows", "engagement_count", "clear_engagement"]

REQUIRED = ("query", "item", "position")
OPTIONAL = ("clicked", "saved", "user", "timestamp", "ts", "source")
BATCH = 5000
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


@dataclass
class EngagementReport:
    """What an engagement ingest did: rows read, impressions added, and every skipped row with its reason."""

    source: str
    rows: int = 0
    added: int = 0
    clicks: int = 0
    saves: int = 0
    skipped: list[Problem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self, max_problems: int = 100) -> dict:
        return {"source": self.source, "rows": self.rows, "added": self.added, "clicks": self.clicks,
                "saves": self.saves, "skipped": len(self.skipped),
                "problems": [str(p) for p in self.skipped[:max_problems]],
                "ignored_columns": self.ignored_columns, "seconds": round(self.seconds, 3)}


# ---- reading ---------------------------------------------------------------------------------------------------
def read_engagement_log(path: str | Path) -> Iterator[EngagementRow | Problem]:
    """Stream a log's rows; raise BadManifestError only when the file as a whole is unusable (missing file,
    unknown type, no header, a required column absent from the header)."""
    rows, _ = _open_log(Path(path))
    return rows


def _open_log(path: Path) -> tuple[Iterator[EngagementRow | Problem], list[str]]:
    table = open_table(path, what="engagement log")
    columns = table.columns
    ignored: list[str] = []
    if columns is not None:
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise BadManifestError(f"{path}: no {', '.join(repr(c) for c in missing)} column (found: "
                                   f"{', '.join(columns) or 'none'}); an engagement log needs query, item and "
                                   "position columns")
        ignored = [c for c in columns if c not in REQUIRED and c not in OPTIONAL]

    def rows() -> Iterator[EngagementRow | Problem]:
        for row in table.rows():
            if isinstance(row, Problem):
                yield row
                continue
            try:
                yield _row(row.values, row.where)
            except BadManifestError as e:
                yield Problem(row.where, str(e), e.remedy)

    return rows(), ignored


def _row(record: dict[str, Any], where: str) -> EngagementRow:
    query, item = text(record.get("query")), text(record.get("item"))
    for name, value in (("query", query), ("item", item)):
        if value is None:
            raise BadManifestError(f"missing {name!r}: give the catalogue id of the "
                                   + ("item whose related list was shown" if name == "query" else "shown item"))
    if query == item:
        raise BadManifestError(f"item {item!r} is its own query; a related list never shows its query")
    for name in ("query", "item", "user", "timestamp", "ts", "source"):  # invalid UTF-8 cannot be stored
        check_text(name, text(record.get(name)))
    return EngagementRow(where=where, query=query, item=item, position=_position(record.get("position")),
                         clicked=_flag(record.get("clicked"), "clicked"), saved=_flag(record.get("saved"), "saved"),
                         user=text(record.get("user")),
                         ts=text(record.get("timestamp", record.get("ts"))), source=text(record.get("source")))


def _position(value: Any) -> int:
    if isinstance(value, bool):
        raise BadManifestError(f"position {value!r} is not a positive integer")
    number_text = text(value)
    if number_text is None:
        raise BadManifestError("missing 'position': give the 1-based position of the item in the shown list")
    try:
        number = float(number_text)
    except ValueError:
        raise BadManifestError(f"position {number_text!r} is not a positive integer") from None
    if not number.is_integer() or number < 1:
        raise BadManifestError(f"position {number_text!r} is not a positive integer (1 is the first place)")
    return int(number)


def _flag(value: Any, name: str) -> int:
    if isinstance(value, bool):
        return int(value)
    flag = (text(value) or "").lower()
    if flag in _TRUE or flag in ("1.0",):
        return 1
    if flag in _FALSE or flag in ("0.0",):
        return 0
    raise BadManifestError(f"{name} {value!r} is not 0/1 (or true/false)")


# ---- storing ---------------------------------------------------------------------------------------------------
def ingest_engagement(store: CatalogStore, path: str | Path, *, batch: int = BATCH) -> EngagementReport:
    """Insert a log's impressions into the store's `events` table (see the module docstring); bad rows are
    reported, not raised."""
    start = time.perf_counter()
    path = Path(path)
    rows, ignored = _open_log(path)
    report = EngagementReport(source=str(path), ignored_columns=ignored)
    while True:
        chunk = list(islice(rows, batch))
        if not chunk:
            break
        report.rows += len(chunk)
        good = [r for r in chunk if isinstance(r, EngagementRow)]
        report.skipped += [r for r in chunk if isinstance(r, Problem)]
        unknown = store.add_impressions(good)
        for r, fields in unknown:
            names = " and ".join(f"{name} {getattr(r, name)!r}" for name in fields)
            report.skipped.append(Problem(r.where, f"unknown item id: {names} not in the catalogue; ingest the "
                                                   "items first"))
        left_out = {id(r) for r, _ in unknown}
        added = [r for r in good if id(r) not in left_out]
        report.added += len(added)
        report.clicks += sum(r.clicked for r in added)
        report.saves += sum(r.saved for r in added)
    report.seconds = time.perf_counter() - start
    return report


def engagement_rows(store: CatalogStore) -> EngagementLog:
    """Every stored impression, as arrays ordered by insertion (CatalogStore.engagement_rows)."""
    return store.engagement_rows()


def engagement_count(store: CatalogStore) -> int:
    """How many impressions are stored (CatalogStore.engagement_count)."""
    return store.engagement_count()


def clear_engagement(store: CatalogStore) -> int:
    """Delete every stored impression (before reloading a full log); return how many were deleted."""
    return store.clear_engagement()
