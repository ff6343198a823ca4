"""Shop the look through the Python API and the CLI: objects in a scene, each searched in the catalogue."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from conftest import DETECTOR, grocery_subset, needs_data, needs_detector

pytestmark = [needs_data, needs_detector]


def _banana() -> dict:
    return next(r for r in grocery_subset() if r["label.product"] == "Banana" and r["domain"] == "photo")


def test_shop_the_look_finds_the_product(indexed_home):
    from viscover import Engine, Settings
    from viscover.catalog.store import Filters

    with Engine(indexed_home, Settings(workers=1, detector=str(DETECTOR))) as engine:
        scene = engine.shop_the_look(_banana()["path"], k=2, filters=Filters(domain="catalog"), min_score=0.2)
        assert len(scene.hits) == len(scene.objects) > 0
        banana = [hits for o, hits in zip(scene.objects, scene.hits) if o.label == "banana"]
        assert banana and banana[0][0].item.labels["product"] == "Banana"
        few = engine.shop_the_look(_banana()["path"], k=2, min_score=0.2, max_objects=1)
        assert len(few.objects) == 1 == len(few.hits)


def test_detect_command(indexed_home):
    from viscover.cli.app import app

    runner = CliRunner()
    args = ["detect", "--item", _banana()["id"], "--home", str(indexed_home), "--detector", str(DETECTOR),
            "--min-score", "0.2", "--shop", "-k", "2", "--json"]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["objects"] and all(len(o["results"]) <= 2 for o in data["objects"])
    assert all(r["id"] != _banana()["id"] for o in data["objects"] for r in o["results"])
    bad = runner.invoke(app, ["detect", "--home", str(indexed_home)])
    assert bad.exit_code == 1 and "exactly one scene" in bad.output
    off = runner.invoke(app, ["detect", "--item", _banana()["id"], "--home", str(indexed_home)])
    assert off.exit_code == 1 and "detector" in off.output
