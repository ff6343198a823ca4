"""`ingest-vectors`: store embeddings computed elsewhere for catalogue items, as if `index` had computed them, so a
large catalogue need not be embedded on this machine. Streamed a batch at a time into new shards; bad rows are
reported and skipped; items whose vector is replaced leave the model's index, and the next `index` adds them back
with the new one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from viscover.catalog.records import Problem
from viscover.catalog.store import CatalogStore
from viscover.config import Settings
from viscover.embed import Embedder
from viscover.embed.declared import model_meta
from viscover.embed.vector_files import VectorFile
from viscover.embed.vectors import EmbeddingStore
from viscover.errors import BadManifestError, Hint, Remedy
from viscover.paths import Home
from viscover.progress import ProgressFactory, no_progress

MAX_PROBLEMS = 10_000  # skipped rows listed in a report; later ones are only counted


@dataclass
class VectorImportReport:
    """What an import did: rows read, vectors stored (and how many replaced one), skipped rows with reasons."""

    source: str
    model: str
    dim: int
    rows: int = 0
    imported: int = 0
    replaced: int = 0
    skipped: list[Problem] = field(default_factory=list)
    skipped_unlisted: int = 0
    replaced_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    def skip(self, problems: list[Problem]) -> None:
        room = max(0, MAX_PROBLEMS - len(self.skipped))
        self.skipped += problems[:room]
        self.skipped_unlisted += max(0, len(problems) - room)

    def to_dict(self, hint: Hint | None = None) -> dict:
        return {"source": self.source, "model": self.model, "dim": self.dim, "rows": self.rows,
                "imported": self.imported, "replaced": self.replaced,
                "skipped": len(self.skipped) + self.skipped_unlisted,
                "problems": [p.describe(hint) for p in self.skipped], "problems_unlisted": self.skipped_unlisted}


def import_vectors(store: CatalogStore, home: Home, settings: Settings, embedder: Embedder, path: Path, *,
                   ids: Path | None = None, model: str | None = None,
                   progress: ProgressFactory = no_progress) -> VectorImportReport:
    """Store the vectors of `path` (ids: item ids of this catalogue) as the model's embeddings of those items'
    images. The caller holds the home's write lock."""
    source = VectorFile(path, embedder.dim, ids=ids)
    accepted = {embedder.name, embedder.key, *([model] if model else [])}
    foreign = [m for m in source.models if m not in accepted]
    if foreign:
        raise BadManifestError(f"{path}: vectors of model {foreign[0]!r}, not {embedder.name}; import them with "
                               f"--model {foreign[0]}, or drop the model column if they are this model's")
    report = VectorImportReport(source=str(path), model=embedder.name, dim=embedder.dim)
    vectors = EmbeddingStore(home.embeddings(embedder.key))
    vectors.write_meta(model_meta(embedder))
    item_ids, image_ids = store.item_images()
    order = np.argsort(item_ids)
    item_ids, image_ids = item_ids[order], image_ids[order]
    before = vectors.ids()  # images that had a vector: their items' index entries are stale once replaced
    name = Path(path).name
    replaced = []
    with progress(f"ingest vectors {name}", source.rows) as advance:
        for batch in source.batches(max(1, settings.vector_import_batch)):
            n_rows = len(batch.keys) + len(batch.bad)
            report.rows += n_rows
            found = store.item_ids_of(batch.keys)
            known = np.array([k in found for k in batch.keys], bool)
            bad = [(r, why, None) for r, why in batch.bad]
            bad += [(int(r), f"no item with id {key!r} in the catalogue", Remedy("list-items"))
                    for r, key, ok in zip(batch.rows, batch.keys, known) if not ok]
            report.skip([Problem(f"{name} row {r}", why, remedy) for r, why, remedy in sorted(bad, key=lambda b: b[0])])
            items = np.array([found[k] for k, ok in zip(batch.keys, known) if ok], np.int64)
            images = image_ids[np.searchsorted(item_ids, items)]
            replaced.append(images[np.isin(images, before)])
            vectors.append(images, batch.vectors[known])
            report.imported += len(items)
            advance(n_rows)
    vectors.compact()
    if replaced:
        report.replaced_items = item_ids[np.isin(image_ids, np.concatenate(replaced))]
    report.replaced = len(report.replaced_items)
    return report
