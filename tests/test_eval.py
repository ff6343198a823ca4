"""`viscover eval` (evaluate_manifest) against a brute-force evaluation of the same real embeddings: the right
queries and gallery, a query never retrieving itself, float and binary codes, and rows without a match."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import GROCERY, grocery_subset, needs_data, write_csv
from test_metrics import brute_force
from viscover import Settings
from viscover.embed import load_embedder
from viscover.embed.pipeline import ImageJob, embed_images
from viscover.eval.retrieval import evaluate_manifest

pytestmark = needs_data
KS = (1, 5, 10)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """The grocery subset plus one photo whose product appears nowhere else (it has no match)."""
    lone = next(p for p in sorted((GROCERY / "train/Fruit/Kiwi").glob("*.jpg")))
    rows = grocery_subset() + [{"id": "lone-kiwi", "path": str(lone), "domain": "photo", "split": "val",
                                "label.product": "Kiwi", "label.category": "Kiwi"}]
    return rows, write_csv(rows, tmp_path_factory.mktemp("eval") / "grocery.csv")


@pytest.fixture(scope="module")
def embedded(manifest):
    """Every row's raw vector, computed here independently of evaluate_manifest."""
    rows, _ = manifest
    embedder = load_embedder("efficientnet-lite0")
    raw = np.zeros((len(rows), embedder.dim), np.float32)
    for batch in embed_images([ImageJob(i, r["path"]) for i, r in enumerate(rows)], embedder, Settings(workers=1)):
        raw[batch.ids] = batch.vectors
    return embedder, raw


def expected(rows, raw, query, gallery, centre=None) -> dict[str, dict]:
    """Metrics by definition: rank the whole gallery for each query, the query itself left out."""
    # centred on the mean of every evaluated row (computed here, not by Codec), unless the model is centred itself
    centred = raw - (raw[query | gallery].mean(axis=0) if centre is None else centre)
    floats = centred / np.linalg.norm(centred, axis=1, keepdims=True)  # cosine similarity
    signs = np.where(centred > 0, 1.0, -1.0)  # Hamming distance = (d - a.b) / 2: the same ranking
    labels = np.array([r["label.product"] for r in rows])
    q, g = np.nonzero(query)[0], np.nonzero(gallery)[0]
    self_index = [int(np.nonzero(g == i)[0][0]) if gallery[i] else -1 for i in q]
    out = {}
    for name, codes in (("float", floats), ("binary", signs)):
        out[name] = brute_force(codes[q] @ codes[g].T, labels[q], labels[g], self_index, KS)
    return out


@pytest.mark.parametrize("sides", [
    {},  # every row is a query and in the gallery: the self-exclusion decides everything
    {"query_domain": "photo", "gallery_domain": "catalog"},  # photo -> catalogue product
    {"query_split": "val"},  # held-out photos against everything
    {"query_domain": "photo", "query_split": "val", "gallery_domain": "photo", "gallery_split": "train"},
])
def test_eval_equals_brute_force(manifest, embedded, sides):
    rows, path = manifest
    embedder, raw = embedded
    report = evaluate_manifest(path, "product", embedder=embedder, settings=Settings(workers=1), **sides)
    query = np.array([(sides.get("query_domain") in (None, r["domain"])) and
                      (sides.get("query_split") in (None, r["split"])) for r in rows])
    gallery = np.array([(sides.get("gallery_domain") in (None, r["domain"])) and
                        (sides.get("gallery_split") in (None, r["split"])) for r in rows])
    want = expected(rows, raw, query, gallery)
    assert (report.queries, report.gallery) == (query.sum(), gallery.sum())
    for side in ("float", "binary"):
        got = getattr(report, side)
        for key in [f"recall@{k}" for k in KS] + ["map@r"]:
            assert got[key] == pytest.approx(want[side][key], abs=1e-9), (side, key)
        assert got["queries_without_match"] == query.sum() - want[side]["evaluated_queries"]
    if not sides:
        assert report.float["queries_without_match"] == 1  # the lone kiwi: its only match would be itself
        assert report.float["recall@1"] < 1.0  # real photos: some nearest neighbour is another product



class Centred:
    """EfficientNet-Lite0 whose outputs are declared centred (as a trained viscover model's are): eval must then
    binarise at zero instead of at the rows' mean."""

    def __init__(self, inner, offset: np.ndarray):
        self.inner, self.offset = inner, offset
        self.name, self.key, self.dim, self.spec, self.centered = "centred-lite0", "centred-lite0", inner.dim, \
            inner.spec, True

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        return self.inner.embed(pixels) - self.offset


def test_centred_models_are_binarised_at_zero(manifest, embedded):
    rows, path = manifest
    embedder, raw = embedded
    offset = np.full(embedder.dim, 0.2, np.float32)  # not the mean: centring on the mean would change the codes
    report = evaluate_manifest(path, "product", embedder=Centred(embedder, offset), settings=Settings(workers=1),
                               query_domain="photo", gallery_domain="catalog")
    query = np.array([r["domain"] == "photo" for r in rows])
    want = expected(rows, raw - offset, query, ~query, centre=np.zeros(embedder.dim, np.float32))
    assert report.model == "centred-lite0"
    for side in ("float", "binary"):
        for key in ("recall@1", "recall@5", "map@r"):
            assert getattr(report, side)[key] == pytest.approx(want[side][key], abs=1e-9), (side, key)


def test_unusable_rows_are_skipped_and_named(tmp_path, manifest):
    """A row whose image is unreadable, or whose path is missing, is left out with its reason; the rest is
    evaluated, and the report says so."""
    rows, _ = manifest
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    bad = rows + [{"id": "broken", "path": str(broken), "domain": "photo", "split": "val", "label.product": "Lime"},
                  {"id": "no-path", "path": "", "domain": "photo", "label.product": "Lime"}]
    report = evaluate_manifest(write_csv(bad, tmp_path / "bad.csv"), "product", query_domain="photo",
                               gallery_domain="catalog", settings=Settings(workers=1))
    assert report.queries == sum(r["domain"] == "photo" for r in rows)
    skipped = [str(p) for p in report.skipped]
    n = len(rows) + 1  # the header is line 1
    assert sorted(skipped) == [f"bad.csv line {n + 1}: {broken}: not an image Pillow can read (unknown or "
                               "unsupported format)", f"bad.csv line {n + 2}: empty 'path': give the image's file "
                               "path or URL"]
    out = report.to_dict()
    assert out["skipped"] == skipped


def test_report_json_has_the_documented_shape(manifest, embedded):
    """`viscover eval --json` writes this dict: the README documents its keys; figures rounded to 6 places."""
    rows, path = manifest
    embedder, _ = embedded
    report = evaluate_manifest(path, "product", embedder=embedder, settings=Settings(workers=1),
                               query_domain="photo", gallery_domain="catalog")
    report.float["recall@1"] = 0.123456789  # more places than the report keeps
    out = report.to_dict()
    assert set(out) == {"task", "queries", "gallery", "float", "binary", "model", "query_domain", "gallery_domain",
                        "queries_without_match", "skipped"}
    assert (out["task"], out["model"], out["query_domain"], out["gallery_domain"]) == \
        ("product", "efficientnet-lite0", "photo", "catalog")
    assert (out["queries"], out["gallery"], out["queries_without_match"], out["skipped"]) == (31, 5, 1, [])
    for side in ("float", "binary"):
        assert set(out[side]) == {"recall@1", "recall@5", "recall@10", "map@r"}
        assert out[side]["map@r"] == round(getattr(report, side)["map@r"], 6)
    assert out["float"]["recall@1"] == 0.123457


@pytest.mark.parametrize("sides,message", [
    ({"query_domain": "studio"}, "no labelled query row has domain 'studio' (values present: catalog, photo)"),
    ({"gallery_split": "test"}, "no labelled gallery row has split 'test' (values present: catalog, train, val)"),
    ({"query_domain": "catalog", "query_split": "val"}, "no labelled query row has split 'val'"),
])
def test_impossible_sides_are_refused_naming_what_exists(manifest, sides, message):
    from viscover.errors import BadManifestError

    _, path = manifest
    with pytest.raises(BadManifestError) as error:
        evaluate_manifest(path, "product", settings=Settings(workers=1), **sides)
    assert str(error.value) == f"{path}: {message}" or str(error.value).startswith(f"{path}: {message}")


def test_progress_and_settings_reach_the_embedding(tmp_path, manifest, embedded):
    """The caller's progress factory sees one "embed" bar over every used row, advanced to its end; the caller's
    settings are the ones used (an image-size limit refuses the larger files, named in `skipped`); no settings at
    all means the defaults."""
    import contextlib
    import os

    rows, path = manifest
    embedder, _ = embedded
    bars: list[list] = []

    @contextlib.contextmanager
    def recording(description, total):
        bar = [description, total, 0]
        bars.append(bar)
        yield lambda n: bar.__setitem__(2, bar[2] + n)

    report = evaluate_manifest(path, "product", embedder=embedder, progress=recording,
                               query_domain="photo", gallery_domain="catalog")  # default Settings()
    assert bars == [["embed", len(rows), len(rows)]]
    assert (report.queries, report.gallery, report.skipped) == (31, 5, [])

    sizes = sorted(os.path.getsize(r["path"]) for r in rows)
    limit = sizes[len(sizes) // 2]
    report = evaluate_manifest(path, "product", embedder=embedder, query_domain="photo", gallery_domain="catalog",
                               settings=Settings(workers=1, max_image_bytes=limit))
    too_big = sum(size > limit for size in sizes)
    assert 0 < too_big < len(rows)
    assert len(report.skipped) == too_big and report.queries + report.gallery == len(rows) - too_big
    assert all(f"over the limit of {limit:,}" in str(p) for p in report.skipped), report.skipped


def test_sides_name_only_the_values_that_exist(tmp_path, manifest):
    """Rows without a domain or split do not show up as an empty value in the refusal; with none at all it says
    so."""
    from viscover.errors import BadManifestError

    rows, _ = manifest
    partial = [dict(r, split="") if r["domain"] == "catalog" else r for r in rows]  # catalogue rows: no split
    path = write_csv(partial, tmp_path / "partial.csv")
    with pytest.raises(BadManifestError) as error:
        evaluate_manifest(path, "product", settings=Settings(workers=1), gallery_split="test")
    assert str(error.value) == f"{path}: no labelled gallery row has split 'test' (values present: train, val)"
    bare = write_csv([{k: v for k, v in r.items() if k != "domain"} for r in rows], tmp_path / "bare.csv")
    with pytest.raises(BadManifestError) as error:
        evaluate_manifest(bare, "product", settings=Settings(workers=1), query_domain="photo")
    assert str(error.value) == f"{bare}: no labelled query row has domain 'photo' (values present: none)"
