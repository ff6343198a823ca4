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
from viscover.index import Codec

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


def expected(rows, raw, query, gallery) -> dict[str, dict]:
    """Metrics by definition: rank the whole gallery for each query, the query itself left out."""
    codec = Codec.fit(raw)  # the mean of every evaluated row
    labels = np.array([r["label.product"] for r in rows])
    q, g = np.nonzero(query)[0], np.nonzero(gallery)[0]
    self_index = [int(np.nonzero(g == i)[0][0]) if gallery[i] else -1 for i in q]
    out = {}
    for name, codes in (("float", codec.floats(raw)), ("binary", codec.signs(raw))):
        out[name] = brute_force(codes[q] @ codes[g].T, labels[q], labels[g], self_index, KS)
    return out


@pytest.mark.parametrize("sides", [
    {},  # every row is a query and in the gallery: the self-exclusion decides everything
    {"query_domain": "photo", "gallery_domain": "catalog"},  # photo -> catalogue product
    {"query_split": "val"},  # held-out photos against everything
])
def test_eval_equals_brute_force(manifest, embedded, sides):
    rows, path = manifest
    embedder, raw = embedded
    report = evaluate_manifest(path, "product", embedder=embedder, settings=Settings(workers=1), **sides)
    query = np.array([(sides.get("query_domain") in (None, r["domain"])) and
                      (sides.get("query_split") in (None, r["split"])) for r in rows])
    gallery = np.array([sides.get("gallery_domain") in (None, r["domain"]) for r in rows])
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

