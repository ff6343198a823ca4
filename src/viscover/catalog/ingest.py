"""Ingest: read each row's image (file or URL), hash and check it, and upsert the items in batches.

Images are only probed here (header, size limits, content hash); they are decoded in full once, when embedded.
Rows without an image (a manifest listing items by id alone) get a placeholder image record with no file work at
all, so a catalogue of millions whose vectors are imported ingests at the speed of the database.
A bad row or image is recorded as a Problem and skipped; everything else is committed batch by batch, so an
interrupted ingest keeps what it already wrote and a re-run is idempotent. Memory stays bounded however long the
source: rows are read a batch at a time, only the first MAX_PROBLEMS problems are kept (the rest are counted),
and duplicate detection keeps a small fixed-size entry per distinct id.
"""

from __future__ import annotations

import hashlib
import mimetypes
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Sequence

from viscover.catalog.records import ImageRecord, ItemRecord, Problem
from viscover.catalog.roots import parse_roots
from viscover.catalog.sources import Source, SourceRow, open_source
from viscover.catalog.store import CatalogStore, UpsertCounts
from viscover.config import Settings
from viscover.errors import BadImageError, Hint
from viscover.fsutil import atomic_write_bytes
from viscover.imaging import is_url, probe_image, read_image_bytes
from viscover.progress import ProgressFactory, no_progress

BATCH = 256
MAX_PROBLEMS = 10_000  # problems listed in a report; later ones are only counted


@dataclass
class IngestReport:
    """What an ingest did: counts, and every skipped row with its reason."""

    source: str
    rows: int = 0
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    repeated: int = 0  # rows repeating an earlier row of this source (same id, same image)
    without_image: int = 0  # rows listing an item without an image file (its vector is imported)
    skipped: list[Problem] = field(default_factory=list)  # the first MAX_PROBLEMS skipped rows, with reasons
    skipped_unlisted: int = 0  # skipped rows beyond MAX_PROBLEMS: counted, not listed
    ignored_columns: list[str] = field(default_factory=list)
    note: str = ""  # set when the source held nothing to ingest: what to tell the user

    @property
    def skipped_total(self) -> int:
        return len(self.skipped) + self.skipped_unlisted

    def skip(self, problems: list[Problem]) -> None:
        room = max(0, MAX_PROBLEMS - len(self.skipped))
        self.skipped += problems[:room]
        self.skipped_unlisted += max(0, len(problems) - room)

    def to_dict(self, hint: Hint | None = None) -> dict:
        """The report as JSON; `hint` is a shell's phrasing of the problems' remedies (none by default)."""
        return {"source": self.source, "rows": self.rows, "added": self.counts.added,
                "updated": self.counts.updated, "unchanged": self.counts.unchanged, "repeated": self.repeated,
                "without_image": self.without_image,
                "skipped": self.skipped_total, "problems": [p.describe(hint) for p in self.skipped],
                "problems_unlisted": self.skipped_unlisted, "ignored_columns": self.ignored_columns,
                "note": self.note or None}


def ingest(store: CatalogStore, source: Source, *, blob_dir: Path, settings: Settings,
           progress: ProgressFactory = no_progress) -> IngestReport:
    """Read, check and upsert every row of `source`; return what was added, updated, repeated and skipped."""
    report = IngestReport(source=source.name, ignored_columns=list(source.ignored_columns))
    seen: dict[str, tuple[str, bytes]] = {}  # key -> (where, sha256 prefix) of its first row in this source
    with ThreadPoolExecutor(max_workers=max(1, settings.ingest_threads)) as pool, \
            progress(f"ingest {Path(source.name).name}", source.total) as advance:
        while True:
            batch = list(islice(source.rows, BATCH))
            if not batch:
                break
            report.rows += len(batch)
            rows = [r for r in batch if isinstance(r, SourceRow)]
            problems = [r for r in batch if isinstance(r, Problem)]
            records = []
            read = iter(pool.map(lambda r: _load(r, settings, blob_dir), [r for r in rows if r.location]))
            for row in rows:
                loaded = next(read) if row.location else _without_image(row)
                if isinstance(loaded, Problem):
                    problems.append(loaded)
                    continue
                digest = bytes.fromhex(loaded.image.sha256[:32])
                first = seen.get(row.key)
                if first is None:
                    seen[row.key] = (row.where, digest)
                    records.append(loaded)
                elif first[1] == digest:
                    report.repeated += 1
                else:
                    problems.append(Problem(row.where, f"id {row.key!r} was already used by {first[0]} for a "
                                                       "different image (the first one is kept); ids must be unique"))
            report.without_image += sum(1 for r in records if not r.source)
            report.skip(problems)
            report.counts += store.upsert(records)
            advance(len(batch))
    if report.rows == 0:
        report.note = source.empty_note
    return report


def ingest_path(store: CatalogStore, source: Path, *, blob_dir: Path, settings: Settings,
                label_from_dirs: str | None = None, domain: str | None = None, board: str | None = None,
                image_roots: Sequence[str | Path] = (), progress: ProgressFactory = no_progress) -> IngestReport:
    """Ingest a folder or a manifest; its local paths must lie inside its own folder, `image_roots` or the
    image_roots setting."""
    roots = [*parse_roots(settings.image_roots), *image_roots]
    src = open_source(Path(source).expanduser(), label_from_dirs=label_from_dirs, domain=domain, board=board,
                      image_roots=roots)
    return ingest(store, src, blob_dir=blob_dir, settings=settings, progress=progress)


def _without_image(row: SourceRow) -> ItemRecord:
    """An item listed by id alone: a placeholder image of its own (no file), its vector to be imported."""
    return ItemRecord(key=row.key, source="", image=ImageRecord.absent(row.key), fields=row.fields,
                      labels=row.labels, boards=row.boards)


def _load(row: SourceRow, settings: Settings, blob_dir: Path) -> ItemRecord | Problem:
    try:
        data = read_image_bytes(row.location, max_bytes=settings.max_image_bytes, timeout=settings.url_timeout,
                                url_allow_hosts=settings.url_allow_hosts)
        info = probe_image(data, max_pixels=settings.max_image_pixels, name=row.location)
    except BadImageError as e:
        return Problem(row.where, str(e), e.remedy)
    sha = hashlib.sha256(data).hexdigest()
    uri = row.location
    if is_url(row.location):  # keep our own copy: URLs change and vanish
        ext = mimetypes.guess_extension(f"image/{info.format.lower()}") or ".img"
        blob = blob_dir / sha[:2] / f"{sha}{ext}"
        if not blob.exists():
            atomic_write_bytes(blob, data)
        uri = str(blob)
    image = ImageRecord(sha256=sha, width=info.width, height=info.height, format=info.format, nbytes=len(data),
                        uri=uri)
    return ItemRecord(key=row.key, source=row.location, image=image, fields=row.fields, labels=row.labels,
                      boards=row.boards)
