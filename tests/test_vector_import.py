"""Bring your own vectors: `viscover ingest-vectors` imports embeddings computed elsewhere (Parquet: id, vector,
optional model; or an .npy of vectors with an ids file) for catalogue items, streamed in batches; bad rows are
reported and skipped, a file that cannot be right is one clear error."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import SHARED, needs_data
from viscover.cli.app import app

pytestmark = needs_data
runner = CliRunner()


def _exported(indexed_home) -> tuple[list[str], np.ndarray, str]:
    """(item keys, their raw vectors, model name) as the engine itself computed them."""
    from viscover import Engine, Settings
    from viscover.embed.vectors import EmbeddingStore

    with Engine(indexed_home, Settings(workers=1)) as engine:
        embedder = engine.embedder()
        item_ids, image_ids = engine.store.item_images()
        items = engine.store.items_by_ids(item_ids.tolist())
        vectors = EmbeddingStore(engine.home.embeddings(embedder.key)).vectors_of(image_ids)
        return [items[int(i)].key for i in item_ids], vectors, embedder.name


def _fresh_home(tmp_path, grocery_manifest, clothing_manifest):
    """The same catalogue as the indexed home, ingested (images probed, not embedded), without vectors."""
    from viscover import Engine, Settings

    home = tmp_path / "fresh"
    with Engine(home, Settings(workers=1)) as engine:
        engine.ingest(grocery_manifest, image_roots=[SHARED])
        engine.ingest(clothing_manifest, image_roots=[SHARED])
    return home


def _results(home, keys: list[str]) -> list[list[tuple[str, float]]]:
    from viscover import Engine, Settings

    with Engine(home, Settings(workers=1)) as engine:
        return [[(h.item.key, round(h.score, 5)) for h in engine.search_item(k, k=8)] for k in keys]


def run(*args, ok: bool = True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_parquet_round_trip_gives_identical_search_results(indexed_home, grocery_manifest, clothing_manifest,
                                                           tmp_path):
    keys, vectors, model = _exported(indexed_home)
    path = tmp_path / "vectors.parquet"
    pq.write_table(pa.table({"id": keys, "vector": pa.FixedSizeListArray.from_arrays(vectors.ravel(),
                                                                                      vectors.shape[1]),
                             "model": [model] * len(keys)}), path, row_group_size=17)
    home = _fresh_home(tmp_path, grocery_manifest, clothing_manifest)
    report = json.loads(run("ingest-vectors", path, "--model", model, "--home", home, "--json").stdout)
    assert (report["rows"], report["imported"], report["skipped"]) == (len(keys), len(keys), 0)
    index = json.loads(run("index", "--home", home, "--json").stdout)
    assert index["embedded"] == 0 and index["size"] == len(keys)
    probe = keys[::9]
    assert _results(home, probe) == _results(indexed_home, probe)


def test_npy_with_an_ids_file_round_trip(indexed_home, grocery_manifest, clothing_manifest, tmp_path):
    from viscover import Engine, Settings

    keys, vectors, model = _exported(indexed_home)
    np.save(tmp_path / "vectors.npy", vectors)
    (tmp_path / "ids.txt").write_text("\n".join(keys) + "\n")
    home = _fresh_home(tmp_path, grocery_manifest, clothing_manifest)
    with Engine(home, Settings(workers=1, vector_import_batch=10)) as engine:
        report = engine.import_vectors(tmp_path / "vectors.npy", ids=tmp_path / "ids.txt", model=model)
        assert report.imported == len(keys) and not report.skipped
        assert engine.index().embedded == 0
    probe = keys[::11]
    assert _results(home, probe) == _results(indexed_home, probe)


def test_bad_rows_are_skipped_with_reasons_and_the_rest_imported(indexed_home, tmp_path):
    from viscover import Engine, Settings

    keys, vectors, model = _exported(indexed_home)
    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    rng = np.random.default_rng(0)
    new = rng.random((4, vectors.shape[1])).astype(np.float32)
    nan = new[0].copy()
    nan[3] = np.nan
    rows = {"id": [keys[0], "no-such-item", keys[1], keys[2], keys[3], keys[4]],
            "vector": [new[0].tolist(), new[1].tolist(), new[2][:10].tolist(), nan.tolist(), None,
                       (new[3] * np.inf).tolist()]}
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(rows), path)
    with Engine(home, Settings(workers=1)) as engine:
        report = engine.import_vectors(path, model=model)
        reasons = [str(p) for p in report.skipped]
        assert report.rows == 6 and report.imported == 1 and len(reasons) == 5, reasons
        assert "bad.parquet row 2: no item with id 'no-such-item'" in reasons[0]
        assert "10 values, the model's vectors have 1280" in reasons[1]
        assert "NaN or infinite" in reasons[2] and "no vector" in reasons[3] and "NaN or infinite" in reasons[4]
        assert report.replaced == 1  # keys[0] had a vector: it is replaced, and re-indexed
        engine.index()
        index = engine.vector_index()
        item = engine.item(keys[0])
        assert np.allclose(index.stored_floats(np.array([item.id])), index.encode(new[:1]).floats, atol=1e-5)


def test_files_that_cannot_be_right_are_one_clear_error(indexed_home, tmp_path):
    keys, vectors, model = _exported(indexed_home)
    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    cases = {}
    path = tmp_path / "other-model.parquet"
    pq.write_table(pa.table({"id": keys[:2], "vector": vectors[:2].tolist(), "model": ["clip-vit-b32"] * 2}), path)
    cases[path] = "other-model.parquet: vectors of model 'clip-vit-b32', not efficientnet-lite0"
    path = tmp_path / "narrow.parquet"
    pq.write_table(pa.table({"id": keys[:2], "vector": pa.FixedSizeListArray.from_arrays(
        vectors[:2, :256].ravel(), 256)}), path)
    cases[path] = "narrow.parquet: vectors have 256 values, the model's have 1280"
    path = tmp_path / "no-vector.parquet"
    pq.write_table(pa.table({"id": keys[:2], "embedding": vectors[:2].tolist()}), path)
    cases[path] = "no-vector.parquet: no 'vector' column"
    np.save(tmp_path / "alone.npy", vectors[:2])
    cases[tmp_path / "alone.npy"] = "alone.npy: an .npy of vectors needs its ids: --ids FILE"
    (tmp_path / "garbage.parquet").write_bytes(b"not parquet at all")
    cases[tmp_path / "garbage.parquet"] = "garbage.parquet: not a readable Parquet file"
    (tmp_path / "v.csv").write_text("id,vector\n")
    cases[tmp_path / "v.csv"] = "v.csv: vectors are read from .parquet or .npy files"
    for path, message in cases.items():
        result = run("ingest-vectors", path, "--model", model, "--home", home, ok=False)
        assert result.exit_code == 1, (path, result.output)
        assert message in " ".join(result.output.split()), result.output
        assert "Traceback" not in result.output
    np.save(tmp_path / "two.npy", vectors[:2])
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    result = run("ingest-vectors", tmp_path / "two.npy", "--ids", tmp_path / "three.txt", "--model", model,
                 "--home", home, ok=False)
    assert "two.npy holds 2 vectors but three.txt 3 ids" in " ".join(result.output.split())


@pytest.mark.parametrize("ids_name", ["ids.npy", "ids.csv"])
def test_npy_ids_may_be_an_npy_or_a_csv_with_an_id_column(indexed_home, tmp_path, ids_name):
    from viscover import Engine, Settings

    keys, vectors, model = _exported(indexed_home)
    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    np.save(tmp_path / "v.npy", vectors[:5])
    if ids_name == "ids.npy":
        np.save(tmp_path / ids_name, np.array(keys[:5]))
    else:
        (tmp_path / ids_name).write_text("title,id\n" + "".join(f"x,{k}\n" for k in keys[:5]))
    with Engine(home, Settings(workers=1)) as engine:
        report = engine.import_vectors(tmp_path / "v.npy", ids=tmp_path / ids_name, model=model)
    assert report.imported == 5 and report.replaced == 5 and not report.skipped
