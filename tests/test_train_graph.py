"""`train-graph`: PinSage embeddings of the catalogue's item-board graph stored as a declared model with its own
index, searched by item like any model; resumable; clear errors without boards or without base vectors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import SHARED, write_csv
from viscover import BadRequestError, Engine, GraphTrainConfig, NotFoundError, Settings
from viscover.cli.hints import with_hint

ICONS = SHARED / "icons" / "icons.csv"
needs_icons = pytest.mark.skipif(not ICONS.is_file(), reason=f"icon data not found at {ICONS} (set "
                                 "VISCOVER_SHARED_DATA)")
SMALL = dict(dim=16, hidden=32, walk_steps=50, hard_steps=200, pairs_per_board=20, val_pairs=50)


def icon_rows(every: int = 7, boards: bool = True) -> list[dict]:
    """Every `every`-th icon (about 200 of 1,390, boards of every kind), images by absolute path."""
    with open(ICONS, newline="") as f:
        rows = list(csv.DictReader(f))[::every]
    return [{"id": f"icon-{r['id']}", "path": str(ICONS.parent / r["path"]), "title": r["title"],
             **({"boards": r["boards"]} if boards else {})} for r in rows]


@pytest.fixture(scope="module")
def icons_manifest(tmp_path_factory):
    if not ICONS.is_file():
        pytest.skip(f"icon data not found at {ICONS}")
    return write_csv(icon_rows(), tmp_path_factory.mktemp("icons") / "icons.csv")


@pytest.fixture(scope="module")
def graph_home(tmp_path_factory, icons_manifest):
    """An icons home, indexed, with a graph model trained for 2 epochs (dim 16): (home, report)."""
    home = tmp_path_factory.mktemp("graph-home")
    with Engine(home, Settings(workers=1)) as engine:
        engine.ingest(icons_manifest, image_roots=[SHARED])
        engine.index()
        report = engine.train_graph(config=GraphTrainConfig(epochs=2, **SMALL))
    return home, report


@needs_icons
def test_the_graph_model_is_declared_indexed_and_searchable_by_item(graph_home):
    home, report = graph_home
    name = report["model"]
    with Engine(home, Settings(workers=1)) as engine:
        assert name == f"graph-{engine.embedder().name}"
        declared = engine.embedder(name)
        assert declared.dim == 16
        n_items = engine.counts()["items"]
        assert report["items"] == n_items and report["boards"] > 10 and report["edges"] >= n_items
        assert [h["epoch"] for h in report["history"]] == [1, 2]
        assert report["epochs_trained"] == 2 and report["resumed_after_epoch"] == 0
        index = engine.vector_index(name)
        items, total = engine.items(limit=1000)
        assert total == n_items
        assert index.contains(np.array([i.id for i in items])).all()  # every graph item is in its index
        assert engine.unindexed(name) == 0
        hits = engine.search_item(items[0].key, model=name, k=5)
        assert len(hits) == 5 and items[0].key not in [h.item.key for h in hits]
        # nearest neighbours by the graph share a board with the query far more often than random items do
        boards = {i.key: set(i.boards) for i in items}
        on_boards = [i for i in items if i.boards]
        near = [bool(boards[i.key] & boards[h.item.key]) for i in on_boards
                for h in engine.search_item(i.key, model=name, k=5)]
        rng = np.random.default_rng(0)
        rand = [bool(boards[i.key] & boards[items[j].key]) for i in on_boards
                for j in rng.choice(len(items), 5) if items[j].key != i.key]
        assert np.mean(near) > 2 * np.mean(rand), (np.mean(near), np.mean(rand))
        assert (home / "graph-models").is_dir()


@needs_icons
def test_resume_continues_after_the_epochs_already_trained(graph_home):
    home, first = graph_home
    with Engine(home, Settings(workers=1)) as engine:
        report = engine.train_graph(config=GraphTrainConfig(epochs=3, **SMALL), resume=True)
    assert report["resumed_after_epoch"] == 2 and report["epochs_trained"] == 1
    assert [h["epoch"] for h in report["history"]] == [1, 2, 3]
    assert report["history"][:2] == first["history"]  # the earlier epochs were not redone


def test_a_catalogue_without_boards_is_a_clear_error(tmp_path, icons_manifest):
    rows = icon_rows(every=50, boards=False)
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        engine.ingest(write_csv(rows, tmp_path / "plain.csv"), image_roots=[SHARED])
        engine.index()
        with pytest.raises(BadRequestError, match="no boards") as raised:
            engine.train_graph(config=GraphTrainConfig(epochs=1, **SMALL))
    assert "boards column" in with_hint(raised.value)


def test_a_catalogue_not_indexed_with_the_base_model_is_a_clear_error(tmp_path, icons_manifest):
    rows = icon_rows(every=50)
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        engine.ingest(write_csv(rows, tmp_path / "boards.csv"), image_roots=[SHARED])
        with pytest.raises(NotFoundError, match="indexed with that model first") as raised:
            engine.train_graph(config=GraphTrainConfig(epochs=1, **SMALL))
    assert "run `viscover index --model" in with_hint(raised.value)


@needs_icons
def test_the_train_graph_command_writes_its_report_and_search_uses_the_model(tmp_path, icons_manifest):
    from viscover.cli.app import app

    home = tmp_path / "home"
    with Engine(home, Settings(workers=1)) as engine:
        engine.ingest(write_csv(icon_rows(every=14), tmp_path / "m.csv"), image_roots=[SHARED])
        engine.index()
    runner = CliRunner()
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["train-graph", "--home", str(home), "--epochs", "1", "--dim", "8",
                                 "--name", "graph-icons", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["model"] == "graph-icons" and report["dim"] == 8 and len(report["history"]) == 1
    result = runner.invoke(app, ["search", "--item", "icon-0", "--model", "graph-icons", "-k", "3", "--json",
                                 "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3


@needs_icons
def test_related_by_graph_is_the_graph_models_search_and_a_clear_error_without_one(graph_home, tmp_path):
    from viscover.cli.app import app

    home, report = graph_home
    with Engine(home, Settings(workers=1)) as engine:
        key = engine.items(limit=1)[0][0].key
        by_graph = engine.related_by_graph(key, k=5)
        assert [h.item.key for h in by_graph] == [h.item.key for h in engine.search_item(key, k=5,
                                                                                       model=report["model"])]
        with pytest.raises(NotFoundError) as raised:
            engine.related_by_graph(key, name="graph-never-trained")
        assert raised.value.remedy.action == "train-graph"
    runner = CliRunner()
    result = runner.invoke(app, ["related", key, "--source", "graph", "-k", "5", "--json", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert [h["id"] for h in json.loads(result.stdout)] == [h.item.key for h in by_graph]
    result = runner.invoke(app, ["related", key, "--source", "graph", "--graph-name", "nope", "--home", str(home)])
    assert result.exit_code == 1 and "viscover train-graph" in result.output


@needs_icons
def test_a_runnable_model_name_or_another_width_is_refused_before_training(graph_home):
    home, report = graph_home
    with Engine(home, Settings(workers=1)) as engine:
        base = engine.embedder().name
        with pytest.raises(BadRequestError, match="a model viscover can run"):
            engine.train_graph(name=base, config=GraphTrainConfig(epochs=1, **SMALL))
        with pytest.raises(BadRequestError, match="stored with 16 dimensions, not 8"):
            engine.train_graph(config=GraphTrainConfig(epochs=1, **{**SMALL, "dim": 8}))
        assert engine.embedder(report["model"]).dim == 16
