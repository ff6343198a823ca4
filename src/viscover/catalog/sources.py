"""Where items come from: manifest files (CSV, JSONL, Parquet) and folders, read as a stream of rows.

A manifest has a required `path` column (relative to the manifest's folder, absolute, or an http(s) URL) and
optional `id`, `title`, `description`, `domain`, `split`, `boards` (`;`-separated) and `label.<task>` columns.
A bad row becomes a Problem naming the file and row; it never stops the rows after it. Files are streamed (CSV,
TSV and JSONL line by line, Parquet batch by batch), never loaded whole. Text manifests may be UTF-8 (with or
without a BOM), UTF-16 or UTF-32 (with a BOM). Local paths must stay inside the manifest's folder or an allowed
root (`viscover.catalog.roots`); folders never follow symbolic links out of themselves.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from viscover.catalog.records import ITEM_FIELDS, Problem
from viscover.catalog.roots import PathGuard
from viscover.errors import BadManifestError
from viscover.imaging import is_url

MANIFEST_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
KNOWN_COLUMNS = {"path", "id", "boards", *ITEM_FIELDS}
LABEL_PREFIX = "label."
MAX_LINE_CHARS = 16 * 1024 * 1024  # a JSONL line longer than this is reported, not read into memory
_BOMS = [(codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")]  # UTF-32 LE starts like UTF-16 LE


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
                board: str | None = None, image_roots: Iterable[str | Path] | None = ()) -> Source:
    """Open a folder of images or a manifest file; raise BadManifestError if it cannot be read at all.

    A manifest's local paths must lie inside its folder or one of `image_roots` (None: anywhere; for trusted
    callers such as training on the user's own manifests).
    """
    if path.is_dir():
        return folder_source(path, label_from_dirs=label_from_dirs, domain=domain, board=board)
    if not path.exists():
        raise BadManifestError(f"{path}: no such file or folder")
    if not is_manifest(path):
        raise BadManifestError(f"{path}: not a folder or a manifest (expected {', '.join(sorted(MANIFEST_SUFFIXES))})")
    if label_from_dirs or board:
        raise BadManifestError("--label-from-dirs and --board apply to folders; put labels and boards in "
                               "the manifest's label.<task> and boards columns instead")
    return manifest_source(path, domain=domain, image_roots=image_roots)


# ---- folders ---------------------------------------------------------------------------------------------------
def folder_source(root: Path, *, label_from_dirs: str | None = None, domain: str | None = None,
                  board: str | None = None) -> Source:
    """Every image file under `root` (recursively, sorted); ids are paths relative to `root`.

    Linked folders are not entered, and a linked file whose target lies outside `root` is reported, not read.
    """
    root = root.resolve()
    files = sorted(_walk_images(root))

    def rows() -> Iterator[SourceRow | Problem]:
        for f in files:
            rel = f.relative_to(root).as_posix()
            outside = _link_outside(f, root)
            if outside:
                yield Problem(str(f), f"symbolic link to {outside}, outside the folder {root}; copy the image "
                                      "into the folder, or list it in a manifest and allow its folder with "
                                      "--image-root")
                continue
            labels = {label_from_dirs: f.parent.name if f.parent != root else None} if label_from_dirs else {}
            fields = {"domain": domain} if domain else {}
            yield SourceRow(where=str(f), location=str(f), key=rel, fields=fields, labels=labels,
                            boards=[board] if board else None)

    return Source(name=str(root), rows=rows(), total=len(files))


def _link_outside(f: Path, root: Path) -> str:
    """Where a symbolic link under `root` leads if that is outside `root` (or cannot be resolved), else ''."""
    if not f.is_symlink():
        return ""
    try:
        target = f.resolve()
    except (OSError, RuntimeError) as e:  # a link loop
        return f"nowhere ({e})"
    return "" if target.is_relative_to(root) else str(target)


def _walk_images(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):  # followlinks=False: linked folders are not entered
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(dirpath) / name


# ---- manifests -------------------------------------------------------------------------------------------------
def manifest_source(path: Path, *, domain: str | None = None,
                    image_roots: Iterable[str | Path] | None = ()) -> Source:
    """Stream a manifest's rows. Local paths outside its folder and `image_roots` become Problems (None: no check)."""
    if not path.is_file():
        raise BadManifestError(f"{path}: no such file")
    kind = MANIFEST_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise BadManifestError(f"{path}: unknown manifest type (expected {', '.join(sorted(MANIFEST_SUFFIXES))})")
    base = path.resolve().parent
    guard = None if image_roots is None else PathGuard.of(path, image_roots)
    if kind == "parquet":
        columns, records, total = _parquet_records(path)
    elif kind == "jsonl":
        columns, records = _jsonl_keys_and_records(path)
        total = _count_lines(path)
    else:
        columns, records, total = _csv_records(path, delimiter="\t" if kind == "tsv" else ",")
    _check_columns(path, columns)
    ignored = [c for c in columns if c and c not in KNOWN_COLUMNS and not c.startswith(LABEL_PREFIX)
               and not (kind == "jsonl" and c in ("label", "labels"))]

    def rows() -> Iterator[SourceRow | Problem]:
        for position, record in records:
            where = f"{path.name} {position}"
            if isinstance(record, Problem):
                yield record
                continue
            try:
                yield _row(record, where, base, domain, guard)
            except BadManifestError as e:
                yield Problem(where, str(e))

    return Source(name=str(path), rows=rows(), total=total, ignored_columns=ignored)


def _check_columns(path: Path, columns: list[str]) -> None:
    if "path" not in columns:
        raise BadManifestError(f"{path}: no 'path' column (found: {', '.join(map(repr, columns)) or 'none'}); the "
                               "manifest needs a header (JSONL: a key in every line) with at least 'path' (image "
                               "file, relative path or URL)")
    repeated = sorted({c for c in columns if c and columns.count(c) > 1})
    if repeated:
        raise BadManifestError(f"{path}: column(s) {', '.join(map(repr, repeated))} appear more than once in the "
                               "header; keep one of each")
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


def _row(record: dict[str, Any], where: str, base: Path, domain: str | None, guard: PathGuard | None) -> SourceRow:
    raw_path = _text(record.get("path"))
    if raw_path is None:
        raise BadManifestError("empty 'path': give the image's file path or URL")
    _check_text("path", raw_path)
    if is_url(raw_path):
        location = raw_path
    else:
        location = str(base / os.path.expanduser(raw_path))  # an absolute path replaces `base`
        if guard is not None:
            guard.check(location, raw_path)
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
    for name, value in [("id", key), *fields.items(), *labels.items(), *(("boards", b) for b in boards or []),
                        *(("label task", task) for task in labels)]:
        _check_text(name, value)
    return SourceRow(where=where, location=location, key=key, fields=fields, labels=labels, boards=boards)


def _check_text(name: str, value: str | None) -> None:
    """Refuse text no database can store: NUL characters, and lone surrogates (bytes that were not valid UTF-8
    arrive as surrogates through surrogateescape; JSON can also spell them as escapes)."""
    if value is None:
        return
    if "\x00" in value:
        raise BadManifestError(f"{name!r} contains a NUL character")
    if not value.isascii() and any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise BadManifestError(f"{name!r} is not valid UTF-8 text; save the manifest as UTF-8")


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def _open_text(path: Path) -> IO[str]:
    """Open a text manifest in the encoding its byte-order mark names (UTF-8 without one). Invalid UTF-8 bytes
    are kept as surrogates so the row holding them can be reported; UTF-16/32 decode strictly."""
    with open(path, "rb") as f:
        head = f.read(4096)
    encoding = next((enc for bom, enc in _BOMS if head.startswith(bom)), None)
    if encoding is None:
        if b"\x00" in head:
            raise BadManifestError(f"{path}: contains NUL bytes, so it is not UTF-8 text (UTF-16 without a "
                                   "byte-order mark, or a binary file); save it as UTF-8")
        encoding = "utf-8"
    errors = "surrogateescape" if encoding.startswith("utf-8") else "strict"
    return open(path, newline="", encoding=encoding, errors=errors)


def _csv_records(path: Path, delimiter: str):
    f = _open_text(path)
    reader = csv.reader(f, delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        f.close()
        raise BadManifestError(f"{path}: empty manifest (no header row)") from None
    except (csv.Error, UnicodeDecodeError) as e:
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
                except UnicodeDecodeError as e:  # UTF-16/32 only: the rest of the file cannot be trusted
                    yield "", Problem(f"{path.name} after line {reader.line_num}",
                                      f"not valid {f.encoding} text ({e.reason}); rows from here on are not read")
                    return
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


def _jsonl_keys_and_records(path: Path):
    """The keys of the first object (checked like a header) and the stream of `_jsonl_records`."""
    lines = _jsonl_records(path)
    buffered = []
    for position, record in lines:
        buffered.append((position, record))
        if not isinstance(record, Problem):
            return list(record), chain(buffered, lines)
    return ["path"], iter(buffered)  # no object at all: only problems (or nothing) to report


def _jsonl_records(path: Path):
    """(position, record) per JSON object line, or ("", Problem) for a line that is not one (also used by
    `viscover.catalog.engagement`)."""
    f = _open_text(path)
    with f:
        number = 0
        while True:
            try:
                line = f.readline(MAX_LINE_CHARS)
            except UnicodeDecodeError as e:
                yield "", Problem(f"{path.name} after line {number}",
                                  f"not valid {f.encoding} text ({e.reason}); lines from here on are not read")
                return
            if not line:
                return
            number += 1
            if len(line) >= MAX_LINE_CHARS and not line.endswith("\n"):
                while (rest := f.readline(MAX_LINE_CHARS)) and not rest.endswith("\n"):
                    pass
                yield "", Problem(f"{path.name} line {number}", f"line longer than {MAX_LINE_CHARS:,} characters")
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as e:  # JSONDecodeError, an integer of >4300 digits, deep nesting
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
        batches = pf.iter_batches(batch_size=4096)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as e:  # a damaged row group: what was read stays, the rest cannot be reached
                yield "", Problem(f"{path.name} after row {number}", f"unreadable Parquet data ({e}); rows from "
                                                                     "here on are not read")
                return
            for record in batch.to_pylist():
                number += 1
                yield f"row {number}", record

    return columns, records(), pf.metadata.num_rows
