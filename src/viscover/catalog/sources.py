"""Where items come from: manifest files (CSV, JSONL, Parquet) and folders, read as a stream of rows.

A manifest has a required `path` column (relative to the manifest's folder, absolute, or an http(s) URL) and
optional `id`, `title`, `description`, `domain`, `split`, `boards` (`;`-separated) and `label.<task>` columns.
A bad row becomes a Problem naming the file and row; it never stops the rows after it.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from viscover.catalog.records import ITEM_FIELDS, Problem
from viscover.errors import BadManifestError
from viscover.imaging import is_url

MANIFEST_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
KNOWN_COLUMNS = {"path", "id", "boards", *ITEM_FIELDS}
LABEL_PREFIX = "label."


@dataclass
class SourceRow:
    """One item to ingest, before its image has been read."""

    where: str  # for messages: "grocery.csv line 12" or a file path
    location: str  # absolute path or URL of the image
    key: str
    fields: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str | None] = field(default_factory=dict)
    boards: list[str] | None = None


@dataclass
class Source:
    """A stream of rows plus what was learnt about the source as a whole."""

    name: str
    rows: Iterator[SourceRow | Problem]
    total: int | None  # rows expected, when cheap to know (for progress bars)
    ignored_columns: list[str] = field(default_factory=list)


def is_manifest(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES


def open_source(path: Path, *, label_from_dirs: str | None = None, domain: str | None = None,
                board: str | None = None) -> Source:
    """Open a folder of images or a manifest file; raise BadManifestError if it cannot be read at all."""
    if path.is_dir():
        return folder_source(path, label_from_dirs=label_from_dirs, domain=domain, board=board)
    if not path.exists():
        raise BadManifestError(f"{path}: no such file or folder")
    if not is_manifest(path):
        raise BadManifestError(f"{path}: not a folder or a manifest (expected {', '.join(sorted(MANIFEST_SUFFIXES))})")
    if label_from_dirs or board:
        raise BadManifestError("--label-from-dirs and --board apply to folders; put labels and boards in "
                               "the manifest's label.<task> and boards columns instead")
    return manifest_source(path, domain=domain)


# ---- folders ---------------------------------------------------------------------------------------------------
def folder_source(root: Path, *, label_from_dirs: str | None = None, domain: str | None = None,
                  board: str | None = None) -> Source:
    """Every image file under `root` (recursively, sorted); ids are paths relative to `root`."""
    root = root.resolve()
    files = sorted(_walk_images(root))

    def rows() -> Iterator[SourceRow | Problem]:
        for f in files:
            rel = f.relative_to(root).as_posix()
            labels = {label_from_dirs: f.parent.name if f.parent != root else None} if label_from_dirs else {}
            fields = {"domain": domain} if domain else {}
            yield SourceRow(where=str(f), location=str(f), key=rel, fields=fields, labels=labels,
                            boards=[board] if board else None)

    return Source(name=str(root), rows=rows(), total=len(files))


def _walk_images(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(dirpath) / name


# ---- manifests -------------------------------------------------------------------------------------------------
def manifest_source(path: Path, *, domain: str | None = None) -> Source:
    if not path.is_file():
        raise BadManifestError(f"{path}: no such file")
    kind = MANIFEST_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise BadManifestError(f"{path}: unknown manifest type (expected {', '.join(sorted(MANIFEST_SUFFIXES))})")
    base = path.resolve().parent
    if kind == "parquet":
        columns, records, total = _parquet_records(path)
    elif kind == "jsonl":
        columns, records, total = None, _jsonl_records(path), _count_lines(path)
    else:
        columns, records, total = _csv_records(path, delimiter="\t" if kind == "tsv" else ",")
    ignored: list[str] = []
    if columns is not None:
        _check_columns(path, columns)
        ignored = [c for c in columns if c not in KNOWN_COLUMNS and not c.startswith(LABEL_PREFIX)]

    def rows() -> Iterator[SourceRow | Problem]:
        for position, record in records:
            where = f"{path.name} {position}"
            if isinstance(record, Problem):
                yield record
                continue
            try:
                yield _row(record, where, base, domain)
            except BadManifestError as e:
                yield Problem(where, str(e))

    return Source(name=str(path), rows=rows(), total=total, ignored_columns=ignored)


def _check_columns(path: Path, columns: list[str]) -> None:
    if "path" not in columns:
        raise BadManifestError(f"{path}: no 'path' column (found: {', '.join(columns) or 'none'}); the manifest "
                               "needs a header with at least 'path' (image file, relative path or URL)")
    bad = [c for c in columns if c.startswith(LABEL_PREFIX) and not c[len(LABEL_PREFIX):].strip()]
    if bad:
        raise BadManifestError(f"{path}: column {bad[0]!r} names no task; use label.<task>, e.g. label.product")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from Parquet/pandas
        return None
    text = str(value).strip()
    return text or None


def _row(record: dict[str, Any], where: str, base: Path, domain: str | None) -> SourceRow:
    raw_path = _text(record.get("path"))
    if raw_path is None:
        raise BadManifestError("empty 'path': give the image's file path or URL")
    if is_url(raw_path):
        location = raw_path
    else:
        p = Path(raw_path).expanduser()
        location = str(p if p.is_absolute() else (base / p))
    key = _text(record.get("id")) or raw_path
    fields = {f: _text(record[f]) for f in ITEM_FIELDS if f in record}
    if domain is not None and fields.get("domain") is None:
        fields["domain"] = domain
    labels: dict[str, str | None] = {}
    for col, value in record.items():
        if col.startswith(LABEL_PREFIX):
            labels[col[len(LABEL_PREFIX):].strip()] = _text(value)
    nested = record.get("label") or record.get("labels")
    if isinstance(nested, dict):  # JSONL may nest: {"labels": {"product": "x"}}
        labels.update({str(k): _text(v) for k, v in nested.items()})
    boards = None
    if "boards" in record:
        value = record["boards"]
        parts = value if isinstance(value, list) else (_text(value) or "").split(";")
        boards = sorted({b for b in (_text(p) for p in parts) if b})
    for name, value in [("id", key), *fields.items(), *labels.items()]:
        if value is not None and not value.isascii() and any(0xDC80 <= ord(ch) <= 0xDCFF for ch in value):
            raise BadManifestError(f"{name!r} is not valid UTF-8 text; save the manifest as UTF-8")
    return SourceRow(where=where, location=location, key=key, fields=fields, labels=labels, boards=boards)


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def _csv_records(path: Path, delimiter: str):
    f = open(path, newline="", encoding="utf-8-sig", errors="surrogateescape")
    reader = csv.reader(f, delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        f.close()
        raise BadManifestError(f"{path}: empty manifest (no header row)") from None
    except csv.Error as e:
        f.close()
        raise BadManifestError(f"{path}: unreadable header ({e})") from None
    total = max(0, _count_lines(path) - 1)

    def records():
        with f:
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    yield "", Problem(f"{path.name} line {reader.line_num}", f"malformed CSV ({e})")
                    continue
                if not any(v.strip() for v in values):
                    continue
                if len(values) > len(header):
                    yield "", Problem(f"{path.name} line {reader.line_num}",
                                      f"{len(values)} fields but the header has {len(header)}; quote "
                                      "values that contain the delimiter")
                    continue
                values += [""] * (len(header) - len(values))
                yield f"line {reader.line_num}", dict(zip(header, values))

    return header, records(), total


def _jsonl_records(path: Path):
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                yield "", Problem(f"{path.name} line {number}", f"not valid JSON ({e})")
                continue
            if not isinstance(record, dict):
                yield "", Problem(f"{path.name} line {number}", "expected a JSON object per line")
                continue
            yield f"line {number}", record


def _parquet_records(path: Path):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise BadManifestError(f"{path}: not a readable Parquet file ({e})") from None
    columns = list(pf.schema_arrow.names)

    def records():
        number = 0
        for batch in pf.iter_batches(batch_size=4096):
            for record in batch.to_pylist():
                number += 1
                yield f"row {number}", record

    return columns, records(), pf.metadata.num_rows
