"""Table files read as a stream of rows: CSV, TSV, JSONL and Parquet, shared by manifests and engagement logs.

Every row comes with where it is ("grocery.csv line 12", "log.parquet row 3"). A row that cannot be read (malformed
CSV, too many fields, a line that is not a JSON object, a damaged Parquet row group) becomes a Problem naming it,
and the rows after it are still read when the format allows. Files are streamed (CSV, TSV and JSONL line by line,
Parquet batch by batch), never loaded whole. Text files may be UTF-8 (with or without a BOM), UTF-16 or UTF-32
(with a BOM); invalid UTF-8 reaches the caller as surrogates, which `check_text` refuses per value.
"""

from __future__ import annotations

import codecs
import csv
import json
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import IO, Any, Iterator, Literal

from viscover.catalog.records import Problem
from viscover.errors import BadManifestError

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
MAX_LINE_CHARS = 16 * 1024 * 1024  # a JSONL line longer than this is reported, not read into memory
_BOMS = [(codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")]  # UTF-32 LE starts like UTF-16 LE

# (position, record) per row, e.g. ("line 12", {...}); ("", Problem) for a row that cannot be read
Records = Iterator[tuple[str, "dict[str, Any] | Problem"]]


@dataclass(frozen=True)
class TableRow:
    """One readable row: where it is (file name and line or row number) and its values by column."""

    where: str
    values: dict[str, Any]


@dataclass
class Table:
    """A table file opened for streaming: its columns, its rows (read once) and how many there are when cheap."""

    path: Path
    kind: Literal["csv", "tsv", "jsonl", "parquet"]
    columns: list[str] | None  # the header; JSONL: the first object's keys if asked for, else None (no header)
    records: Records
    total: int | None  # rows expected (for progress bars), None when unknown

    def rows(self) -> Iterator[TableRow | Problem]:
        """Each row as a TableRow, or the Problem that stood in for it."""
        for position, record in self.records:
            yield record if isinstance(record, Problem) else TableRow(f"{self.path.name} {position}", record)


def open_table(path: Path, *, what: str = "table", jsonl_header: bool = False) -> Table:
    """Open a CSV, TSV, JSONL or Parquet file; raise BadManifestError only when the file as a whole is unusable
    (missing, of an unknown type, no header, not Parquet). `what` names the file in messages ("manifest");
    `jsonl_header` takes a JSONL file's first object's keys as its columns (and counts its lines)."""
    if not path.is_file():
        raise BadManifestError(f"{path}: no such file")
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise BadManifestError(f"{path}: unknown {what} type (expected {', '.join(sorted(TABLE_SUFFIXES))})")
    if kind == "parquet":
        columns, records, total = _parquet_records(path)
    elif kind == "jsonl" and jsonl_header:
        columns, records = _jsonl_keys_and_records(path)
        total = count_lines(path)
    elif kind == "jsonl":
        columns, records, total = None, _jsonl_records(path), None
    else:
        columns, records, total = _csv_records(path, delimiter="\t" if kind == "tsv" else ",")
    return Table(path=path, kind=kind, columns=columns, records=records, total=total)


def text(value: Any) -> str | None:
    """A cell as stripped text; None for missing, empty and NaN cells (Parquet/pandas write NaN for missing)."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from Parquet/pandas
        return None
    out = str(value).strip()
    return out or None


def check_text(name: str, value: str | None) -> None:
    """Refuse text no database can store: NUL characters, and lone surrogates (bytes that were not valid UTF-8
    arrive as surrogates through surrogateescape; JSON can also spell them as escapes)."""
    if value is None:
        return
    if "\x00" in value:
        raise BadManifestError(f"{name!r} contains a NUL character")
    if not value.isascii() and any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise BadManifestError(f"{name!r} is not valid UTF-8 text; save the manifest as UTF-8")


def count_lines(path: Path) -> int:
    """Newlines in a file, read in blocks (a cheap row count for progress bars)."""
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def _open_text(path: Path) -> IO[str]:
    """Open a text table in the encoding its byte-order mark names (UTF-8 without one). Invalid UTF-8 bytes
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


def _csv_records(path: Path, delimiter: str) -> tuple[list[str], Records, int]:
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
    total = max(0, count_lines(path) - 1)

    def records() -> Records:
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


def _jsonl_keys_and_records(path: Path) -> tuple[list[str], Records]:
    """The keys of the first object (checked like a header) and the stream of `_jsonl_records`."""
    lines = _jsonl_records(path)
    buffered = []
    for position, record in lines:
        buffered.append((position, record))
        if not isinstance(record, Problem):
            return list(record), chain(buffered, lines)
    return ["path"], iter(buffered)  # no object at all: only problems (or nothing) to report


def _jsonl_records(path: Path) -> Records:
    """(position, record) per JSON object line, or ("", Problem) for a line that is not one."""
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


def _parquet_records(path: Path) -> tuple[list[str], Records, int]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise BadManifestError(f"{path}: not a readable Parquet file ({e})") from None
    columns = list(pf.schema_arrow.names)

    def records() -> Records:
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
