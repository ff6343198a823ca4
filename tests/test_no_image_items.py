"""Items without image files (issue 13): a manifest without a `path` column lists items by id alone; they are
never embedded, never counted as bad or unindexed for want of an image, and become searchable once their vectors
are imported and indexed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from conftest import SHARED, grocery_subset, needs_data, write_csv
from viscover.cli.app import app

MODEL = "clip-vit-b32-gpu"  # computed on a cluster: no encoder for it here
DIM = 32
N = 60
runner = CliRunner()
pytestmark = needs_data


def run(*args, ok: bool = True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _keys(n: int = N, prefix: str = "sku") -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(n)]


def _manifest(folder: Path, keys: list[str], name: str = "items.csv") -> Path:
    """Items by id alone (no path column): titles, a label and boards, as a shop's product feed gives them."""
    rows = [{"id": k, "title": f"product {i}", "label.category": f"c{i % 6}", "boards": f"board-{i % 10}"}
            for i, k in enumerate(keys)]
    return write_csv(rows, folder / name)


def _vectors(n: int = N, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """A seeded clustered sample: 6 centres, items spread around them (no two near-duplicates)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, dim))
    return (centres[np.arange(n) % 6] + rng.normal(scale=0.8, size=(n, dim))).astype(np.float32)


def _parquet(path: Path, keys: list[str], vectors: np.ndarray, model: str | None = MODEL) -> Path:
    columns = {"id": keys, "vector": pa.FixedSizeListArray.from_arrays(vectors.ravel(), vectors.shape[1])}
    if model:
        columns["model"] = [model] * len(keys)
    pq.write_table(pa.table(columns), path)
    return path


def _exact(keys: list[str], vectors: np.ndarray, query: str, k: int) -> list[str]:
    """The k nearest items by cosine similarity of the vectors centred on their mean (the index's codec, for a
    model not known to be centred), the query itself left out: what search must return."""
    centred = vectors - vectors.mean(axis=0)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    q = keys.index(query)
    scores = unit @ unit[q]
    scores[q] = -np.inf
    return [keys[i] for i in np.argsort(-scores, kind="stable")[:k]]


def test_image_and_no_image_items_in_one_catalogue(tmp_path):
    """Photos are embedded by the default model; items without images are left alone until their vectors are
    imported, then found by searches for the photos and searchable by id."""
    from viscover import Engine, Settings

    home = tmp_path / "home"
    photos = write_csv(grocery_subset(per_product_train=1, per_product_val=0, products=["Banana", "Lime"]),
                       tmp_path / "photos.csv")
    keys = _keys(6, "feed")
    with Engine(home, Settings(workers=1)) as engine:
        assert engine.ingest(photos, image_roots=[SHARED]).counts.added == 4
        assert engine.ingest(_manifest(tmp_path, keys)).counts.added == 6
        report = engine.index()
        assert (report.embedded, len(report.failed), report.size) == (4, 0, 4)
        assert engine.unindexed() == 0 and engine.counts()["bad_images"] == 0
        photo_ids = [i.key for i in engine.items(limit=4)[0]]
        stored = engine.vector_index().stored_floats(np.array([engine.item(photo_ids[0]).id]))
        copies = np.repeat(stored, 6, axis=0) + np.random.default_rng(1).normal(scale=1e-3, size=(6, stored.shape[1]))
        path = _parquet(tmp_path / "v.parquet", keys, copies.astype(np.float32), model=None)
        assert engine.import_vectors(path).imported == 6
        assert engine.unindexed() == 6
        assert engine.index().added == 6 and engine.unindexed() == 0
        found = {h.item.key for h in engine.search_item(photo_ids[0], k=10, collapse=False)}
        assert set(keys) <= found
        assert engine.search_item(keys[0], k=3)
