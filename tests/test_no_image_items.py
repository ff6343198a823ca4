"""Items without image files, and vectors of models viscover cannot run here (issue 13): a manifest without a
`path` column lists items by id alone; `ingest-vectors --model NAME --dim D` declares a model computed elsewhere
and stores its vectors; `index` and search by item id then work without an embedder. Such items are never
embedded, never counted as bad or unindexed for want of an image, and their image URLs answer a clear 404."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import GROCERY, SHARED, grocery_subset, needs_data, write_csv
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


@pytest.fixture
def declared_home(tmp_path) -> tuple[Path, list[str], np.ndarray]:
    """A home of N items without images, with vectors of a declared model imported and indexed (by the CLI)."""
    home, keys, vectors = tmp_path / "home", _keys(), _vectors()
    report = json.loads(run("ingest", _manifest(tmp_path, keys), "--home", home, "--json").stdout)[0]
    assert (report["added"], report["skipped"]) == (N, 0), report
    imported = json.loads(run("ingest-vectors", _parquet(tmp_path / "v.parquet", keys, vectors), "--model", MODEL,
                              "--dim", DIM, "--home", home, "--json").stdout)
    assert (imported["imported"], imported["skipped"], imported["dim"]) == (N, 0, DIM), imported
    indexed = json.loads(run("index", "--model", MODEL, "--home", home, "--json").stdout)
    assert (indexed["embedded"], indexed["failed"], indexed["size"]) == (0, 0, N), indexed
    return home, keys, vectors


def test_search_by_id_on_a_declared_model_returns_the_exact_neighbours(declared_home):
    home, keys, vectors = declared_home
    for query in keys[::7]:
        hits = json.loads(run("search", "--item", query, "--model", MODEL, "-k", 8, "--home", home,
                              "--json").stdout)
        assert [h["id"] for h in hits] == _exact(keys, vectors, query, 8), query


def test_a_model_name_viscover_cannot_run_needs_its_width_on_first_import(tmp_path):
    home, keys, vectors = tmp_path / "home", _keys(10), _vectors(10)
    run("ingest", _manifest(tmp_path, keys), "--home", home)
    path = _parquet(tmp_path / "v.parquet", keys, vectors)
    result = run("ingest-vectors", path, "--model", MODEL, "--home", home, ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    said = " ".join(result.output.split())
    assert f"model {MODEL!r} is not one viscover can run here" in said and "--dim" in said, said
    run("ingest-vectors", path, "--model", MODEL, "--dim", DIM, "--home", home)
    again = json.loads(run("ingest-vectors", path, "--model", MODEL, "--home", home, "--json").stdout)
    assert again["imported"] == 10 and again["replaced"] == 10  # declared once: later imports need no --dim
    wrong = run("ingest-vectors", path, "--model", MODEL, "--dim", 64, "--home", home, ok=False)
    assert f"model {MODEL!r} was declared with 32 dimensions" in " ".join(wrong.output.split()), wrong.output


def test_engine_declared_model_refuses_image_queries_with_a_clear_error(declared_home):
    from viscover import Engine, Settings, ViscoverError
    from viscover.imaging import CropBox

    home, keys, _ = declared_home
    photo = next((GROCERY / "train/Fruit/Banana").glob("*.jpg"))
    with Engine(home, Settings(workers=1, model=MODEL)) as engine:
        assert [h.item.key for h in engine.search_item(keys[0], k=3)] == [h.item.key for h in
                                                                           engine.search_item(keys[0], k=3)]
        with pytest.raises(ViscoverError) as error:
            engine.search_image(photo)
        assert str(error.value) == (f"model {MODEL} has no image encoder here: its vectors were imported; search "
                                    "by item id, or use a model viscover can run")
        with pytest.raises(ViscoverError, match="has no image encoder here"):
            engine.shop_the_look(photo)  # refused before detecting: no object could be embedded
        with pytest.raises(ViscoverError, match=f"item '{keys[0]}' has no image stored; it was ingested from its "
                                                "vector alone"):
            engine.search_item(keys[0], crop=CropBox(0, 0, 10, 10))


def _client(home: Path, **settings):
    from fastapi.testclient import TestClient

    from viscover import Engine, Settings
    from viscover.serve import ServeOptions, create_app

    engine = Engine(home, Settings(workers=1, **settings))
    return TestClient(create_app(engine, ServeOptions(api_key="k")), raise_server_exceptions=False), engine


def test_http_search_by_id_ready_info_and_clear_404_for_images(declared_home):
    home, keys, vectors = declared_home
    client, engine = _client(home, model=MODEL)
    with client:
        ready = client.get("/api/ready")
        assert ready.status_code == 200 and ready.json()["indexed"] == N, ready.text
        hits = client.get("/api/search", params={"item": keys[3], "k": 8}).json()
        assert [h["id"] for h in hits["results"]] == _exact(keys, vectors, keys[3], 8), hits
        info = client.get("/api/info").json()
        assert (info["items"], info["bad_images"], info["unindexed"], info["indexed"]) == (N, 0, 0, N), info
        item = client.get(f"/api/items/{keys[3]}").json()
        for url in (item["image_url"], item["thumb_url"]):
            response = client.get(url)
            assert response.status_code == 404, (url, response.text)
            body = response.json()
            assert body["detail"] == f"item '{keys[3]}' has no image stored; it was ingested from its vector alone"
            assert str(home) not in response.text
        photo = next((GROCERY / "train/Fruit/Banana").glob("*.jpg"))
        upload = client.post("/api/search", files={"file": ("q.jpg", photo.read_bytes(), "image/jpeg")})
        assert upload.status_code == 400 and "has no image encoder here" in upload.text, upload.text
        related = client.get("/api/related", params={"item": keys[5], "k": 5})
        assert related.status_code == 200 and related.json()["results"], related.text
    engine.close()


def test_server_start_does_not_try_to_embed_items_without_images(declared_home, tmp_path):
    """An item without an image and without a vector is not "unindexed": nothing could index it; resume queues
    no job and the server is ready."""
    from viscover import Engine, Settings

    home, keys, _ = declared_home
    run("ingest", _manifest(tmp_path, _keys(5, "late"), "late.csv"), "--home", home)
    with Engine(home, Settings(workers=1, model=MODEL)) as engine:
        assert engine.unindexed() == 0
    client, engine = _client(home, model=MODEL)
    with client:
        ready = client.get("/api/ready")
        assert ready.status_code == 200 and ready.json()["jobs_pending"] == 0, ready.text
    engine.close()
    with Engine(home, Settings(workers=1)) as engine:  # the default model, which can embed: still nothing to do
        assert engine.unindexed() == 0 and engine.counts()["bad_images"] == 0


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
