"""`viscover eval`: retrieval quality of a model on a labelled manifest, for float and binary embeddings.

Queries are the rows with a label for the task (restricted to the query domain, if given); the gallery is every
labelled row (restricted to the gallery domain, if given); a query never retrieves itself. No ingest is needed:
the manifest's images are embedded directly. Binary codes are sign bits of the vectors centred on the mean of all
evaluated rows (the same codec as the index), ranked by Hamming distance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from viscover.catalog.records import Problem
from viscover.catalog.sources import SourceRow, manifest_source
from viscover.config import Settings
from viscover.embed import Embedder, load_embedder
from viscover.embed.pipeline import ImageJob, embed_images
from viscover.errors import BadManifestError
from viscover.index.codec import Codec
from viscover.metrics import ranking_metrics
from viscover.progress import ProgressFactory, no_progress

KS = (1, 5, 10)


@dataclass
class EvalReport:
    task: str
    model: str
    queries: int
    gallery: int
    float: dict
    binary: dict
    query_domain: str | None = None
    gallery_domain: str | None = None
    skipped: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict:
        metric_keys = [f"recall@{k}" for k in KS] + ["map@r"]
        return {"task": self.task, "queries": self.queries, "gallery": self.gallery,
                "float": {k: round(self.float[k], 6) for k in metric_keys},
                "binary": {k: round(self.binary[k], 6) for k in metric_keys},
                "model": self.model, "query_domain": self.query_domain, "gallery_domain": self.gallery_domain,
                "queries_without_match": self.float["queries_without_match"],
                "skipped": [str(p) for p in self.skipped]}


def evaluate_manifest(manifest: Path, task: str, *, model: str | None = None, query_domain: str | None = None,
                      gallery_domain: str | None = None, query_split: str | None = None,
                      gallery_split: str | None = None, settings: Settings | None = None,
                      embedder: Embedder | None = None, progress: ProgressFactory = no_progress) -> EvalReport:
    settings = settings or Settings()
    source = manifest_source(Path(manifest), image_roots=None)  # the user's own manifest: any path
    rows: list[SourceRow] = []
    skipped: list[Problem] = []
    for row in source.rows:
        if isinstance(row, Problem):
            skipped.append(row)
        elif row.labels.get(task) is not None:
            rows.append(row)
    if not rows:
        raise BadManifestError(f"{manifest}: no row has a label for task {task!r} (column label.{task})")
    is_query = _side(rows, manifest, "query", domain=query_domain, split=query_split)
    is_gallery = _side(rows, manifest, "gallery", domain=gallery_domain, split=gallery_split)
    used = np.nonzero(is_query | is_gallery)[0]
    embedder = embedder or load_embedder(model or settings.model)
    raw = np.zeros((len(rows), embedder.dim), np.float32)
    ok = np.zeros(len(rows), bool)
    jobs = [ImageJob(int(i), rows[i].location) for i in used]
    for batch in embed_images(jobs, embedder, settings, progress=progress, description="embed"):
        raw[batch.ids] = batch.vectors
        ok[batch.ids] = True
        skipped += [Problem(rows[i].where, reason) for i, reason in batch.failures]
    is_query &= ok
    is_gallery &= ok
    labels = np.array([r.labels[task] for r in rows])
    _, codes = np.unique(labels, return_inverse=True)
    q = np.nonzero(is_query)[0]
    g = np.nonzero(is_gallery)[0]
    gallery_pos = np.full(len(rows), -1, np.int64)
    gallery_pos[g] = np.arange(len(g))
    self_index = gallery_pos[q]  # a query that is also in the gallery must not retrieve itself
    codec = Codec.for_vectors(raw[ok], centered=embedder.centered)  # as the index would encode them
    floats, signs = codec.floats(raw), codec.signs(raw)
    fq, fg, sq, sg = floats[q], floats[g], signs[q], signs[g]
    float_metrics = ranking_metrics(lambda b: fq[b] @ fg.T, codes[q], codes[g], self_index, KS)
    binary_metrics = ranking_metrics(lambda b: sq[b] @ sg.T, codes[q], codes[g], self_index, KS)
    return EvalReport(task=task, model=embedder.name, queries=len(q), gallery=len(g), float=float_metrics,
                      binary=binary_metrics, query_domain=query_domain, gallery_domain=gallery_domain,
                      skipped=skipped)


def _side(rows: list[SourceRow], manifest: Path, name: str, *, domain: str | None, split: str | None) -> np.ndarray:
    """Mask of labelled rows on one side (query or gallery), restricted by domain and split when given."""
    mask = np.ones(len(rows), bool)
    for field_name, value in (("domain", domain), ("split", split)):
        if value is None:
            continue
        present = np.array([r.fields.get(field_name) or "" for r in rows])
        mask &= present == value
        if not mask.any():
            raise BadManifestError(f"{manifest}: no labelled {name} row has {field_name} {value!r} (values present: "
                                   f"{', '.join(sorted(set(present) - {''})) or 'none'})")
    return mask
