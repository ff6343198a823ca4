"""Where items come from: manifest files (CSV, JSONL, Parquet) and folders, read as a stream of rows.

A manifest has a `path` column (relative to the manifest's folder, absolute, or an http(s) URL) and optional `id`,
`title`, `description`, `domain`, `split`, `boards` (`;`-separated) and `label.<task>` columns. For ingest, a
manifest with an `id` column and no `path` column lists items without image files (their vectors are imported
with `ingest-vectors`); a row of one that does give a path (JSONL) keeps its image.
A bad row becomes a Problem naming the file and row; it never stops the rows after it. Files are streamed, never
loaded whole, and may be UTF-8, UTF-16 or UTF-32 text (`viscover.catalog.tables` reads them). Local paths must stay
inside the manifest's folder or an allowed root (`viscover.catalog.roots`); folders never follow symbolic links
out of themselves.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from viscover.catalog.records import ITEM_FIELDS, Problem
from viscover.catalog.roots import PathGuard
from viscover.catalog.tables import TABLE_SUFFIXES, check_text, open_table, text
from viscover.errors import BadManifestError, Remedy
from viscover.imaging import is_url

MANIFEST_SUFFIXES = TABLE_SUFFIXES
MAX_KEY_LENGTH = 2000  # the longest id the API's ?item= takes; /api/items/{id} and DELETE take it too
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
KNOWN_COLUMNS = {"path", "id", "boards", *ITEM_FIELDS}
LABEL_PREFIX = "label."


@dataclass
class SourceRow:
    """One item to ingest, before its image has been read."""

    where: str  # for messages: "grocery.csv line 12" or a file path
    location: str  # absolute path or URL of the image; "" for an item without one (a manifest without paths)
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
    empty_note: str = "it has no rows"  # what to tell a user when the source gives no row at all


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
        raise BadManifestError("labels from folder names and one board for every image apply to folders; put "
                               "labels and boards in the manifest's label.<task> and boards columns instead")
    return manifest_source(path, domain=domain, image_roots=image_roots, images_optional=True)


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
                                      "into the folder, or list it in a manifest", Remedy("allow-image-root"))
                continue
            try:
                check_key(rel)
            except BadManifestError as e:
                yield Problem(str(f), str(e))
                continue
            labels = {label_from_dirs: f.parent.name if f.parent != root else None} if label_from_dirs else {}
            fields = {"domain": domain} if domain else {}
            yield SourceRow(where=str(f), location=str(f), key=rel, fields=fields, labels=labels,
                            boards=[board] if board else None)

    note = (f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder or its sub-folders (hidden ones "
            "are skipped)")
    return Source(name=str(root), rows=rows(), total=len(files), empty_note=note)


def check_key(key: str) -> None:
    """Refuse an id the API could not address: control characters (a path parameter never matches a newline) or
    more than MAX_KEY_LENGTH characters. Caught at ingest, the row is skipped with this reason."""
    bad = next((ch for ch in key if unicodedata.category(ch) == "Cc" and ch != "\x00"), None)  # NUL: check_text
    if bad is not None:
        raise BadManifestError(f"id {key[:200]!r} contains a control character (U+{ord(bad):04X}); ids are used in "
                               "URLs: give one without line breaks, tabs or other control characters")
    if len(key) > MAX_KEY_LENGTH:
        raise BadManifestError(f"id {key[:40]!r}... is {len(key):,} characters long, over the limit of "
                               f"{MAX_KEY_LENGTH:,} (ids are used in URLs); give a shorter id")


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
def manifest_source(path: Path, *, domain: str | None = None, image_roots: Iterable[str | Path] | None = (),
                    images_optional: bool = False) -> Source:
    """Stream a manifest's rows. Local paths outside its folder and `image_roots` become Problems (None: no check).
    With `images_optional` (ingest), a manifest with an `id` column and no `path` column lists items without
    images: rows with location ""."""
    table = open_table(path, what="manifest", jsonl_header=True)
    base = path.resolve().parent
    guard = None if image_roots is None else PathGuard.of(path, image_roots)
    columns = table.columns or []
    no_paths = images_optional and "path" not in columns and "id" in columns
    _check_columns(path, columns, no_paths)
    ignored = [c for c in columns if c and c not in KNOWN_COLUMNS and not c.startswith(LABEL_PREFIX)
               and not (table.kind == "jsonl" and c in ("label", "labels"))]

    def rows() -> Iterator[SourceRow | Problem]:
        for row in table.rows():
            if isinstance(row, Problem):
                yield row
                continue
            try:
                yield _row(row.values, row.where, base, domain, guard, no_paths)
            except BadManifestError as e:
                yield Problem(row.where, str(e), e.remedy)

    return Source(name=str(path), rows=rows(), total=table.total, ignored_columns=ignored)


def _check_columns(path: Path, columns: list[str], no_paths: bool = False) -> None:
    if "path" not in columns and not no_paths:
        raise BadManifestError(f"{path}: no 'path' column (found: {', '.join(map(repr, columns)) or 'none'}); the "
                               "manifest needs a header (JSONL: a key in every line) with at least 'path' (image "
                               "file, relative path or URL), or for ingesting items without images an 'id' column "
                               "and no 'path' column")
    repeated = sorted({c for c in columns if c and columns.count(c) > 1})
    if repeated:
        raise BadManifestError(f"{path}: column(s) {', '.join(map(repr, repeated))} appear more than once in the "
                               "header; keep one of each")
    bad = [c for c in columns if c.startswith(LABEL_PREFIX) and not c[len(LABEL_PREFIX):].strip()]
    if bad:
        raise BadManifestError(f"{path}: column {bad[0]!r} names no task; use label.<task>, e.g. label.product")


def _row(record: dict[str, Any], where: str, base: Path, domain: str | None, guard: PathGuard | None,
         no_paths: bool = False) -> SourceRow:
    raw_path = text(record.get("path"))
    if raw_path is None and not no_paths:
        raise BadManifestError("empty 'path': give the image's file path or URL")
    check_text("path", raw_path)
    if raw_path is None:  # an item without an image (a manifest without a path column): its id is required
        if text(record.get("id")) is None:
            raise BadManifestError("empty 'id': a manifest without a 'path' column lists items by id alone")
        location = ""
    elif is_url(raw_path):
        location = raw_path
    else:
        location = str(base / os.path.expanduser(raw_path))  # an absolute path replaces `base`
        if guard is not None:
            guard.check(location, raw_path)
    key = text(record.get("id")) or raw_path or ""
    fields = {f: text(record[f]) for f in ITEM_FIELDS if f in record}
    if domain is not None and fields.get("domain") is None:
        fields["domain"] = domain
    labels: dict[str, str | None] = {}
    for col, value in record.items():
        if col.startswith(LABEL_PREFIX):
            labels[col[len(LABEL_PREFIX):].strip()] = text(value)
    nested = record.get("label") or record.get("labels")
    if isinstance(nested, dict):  # JSONL may nest: {"labels": {"product": "x"}}
        labels.update({str(k): text(v) for k, v in nested.items()})
    boards = None
    if "boards" in record:
        value = record["boards"]
        parts = value if isinstance(value, list) else (text(value) or "").split(";")
        boards = sorted({b for b in (text(p) for p in parts) if b})
    check_key(key)
    for name, value in [("id", key), *fields.items(), *labels.items(), *(("boards", b) for b in boards or []),
                        *(("label task", task) for task in labels)]:
        check_text(name, value)
    return SourceRow(where=where, location=location, key=key, fields=fields, labels=labels, boards=boards)
