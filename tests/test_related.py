"""Related items end to end on real photos with boards: the engine API, the command line, explanations,
duplicates, graph staleness, pruning and the hidden-membership evaluation."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import SHARED, clothing_subset, needs_data, write_csv
from viscover import Engine, Settings
from viscover.cli.app import app
from viscover.errors import BadRequestError, NotFoundError
from viscover.metrics import related_metrics
from viscover.graph import Bipartite
from viscover.graph.prune import PruneParams, board_coherence, prune

pytestmark = needs_data


def board_items(engine: Engine, board: str) -> list[str]:
    from viscover.catalog.store import Filters

    ids = engine.store.filter_item_ids(Filters(board=board))
    return sorted(i.key for i in engine.store.items_by_ids(ids.tolist()).values())


def test_related_for_an_item_and_a_set(engine):
    mates = board_items(engine, "sender-10")
    query = mates[0]
    hits = engine.related([query], k=5)
    keys = [h.item.key for h in hits]
    assert len(hits) == 5 and query not in keys and len(set(keys)) == 5
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    walk = engine.related([query], k=5, score_by="pixie")  # walks only reach the query's board here
    assert {h.item.key for h in walk} <= set(mates) and len(walk) == 5
    assert "pixie" in walk[0].explanation["sources"] and "visual" in walk[0].explanation["features"]
    several = engine.related(mates[:3], weights=[1.0, 2.0, 1.0], k=4)
    assert not {h.item.key for h in several} & set(mates[:3])


def test_related_errors(engine):
    with pytest.raises(NotFoundError, match="unknown item id 'nope'"):
        engine.related(["nope"])
    key = board_items(engine, "sender-10")[0]
    with pytest.raises(BadRequestError, match="weights"):
        engine.related([key, key], weights=[1.0])
    with pytest.raises(NotFoundError, match="domain 'studio'"):
        engine.related([key], domain="studio")
    with pytest.raises(BadRequestError):
        engine.related([])


def test_exact_copies_are_not_related_results_and_graph_follows_the_catalogue(tmp_path, clothing_manifest):
    import csv

    from PIL import Image

    rows = list(csv.DictReader(open(clothing_manifest)))[:12]
    copy, near = tmp_path / "copy.jpg", tmp_path / "near.jpg"
    shutil.copy(rows[0]["path"], copy)
    Image.open(rows[0]["path"]).save(near, "JPEG", quality=90)  # the same picture, other bytes
    rows.append({**rows[0], "id": "copy-of-first", "path": str(copy)})
    rows.append({**rows[0], "id": "near-copy-of-first", "path": str(near)})
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        engine.ingest(write_csv(rows, tmp_path / "m.csv"), image_roots=[SHARED])
        engine.index()
        graph = engine.item_graph()
        assert graph.n_left == 14 and graph.n_edges == 14
        for score_by in ("blend", "pixie", "visual"):
            keys = [h.item.key for h in engine.related([rows[0]["id"]], k=13, score_by=score_by)]
            # the copies share the query's board and look identical: only the duplicate rule keeps them out
            assert not {"copy-of-first", "near-copy-of-first"} & set(keys), score_by
            assert rows[1]["id"] in keys, score_by
        assert rows[0]["id"] not in [h.item.key for h in engine.related(["near-copy-of-first"], k=13)]
        extra = list(csv.DictReader(open(clothing_manifest)))[12:14]
        engine.ingest(write_csv([{**r, "boards": "new-board"} for r in extra], tmp_path / "n.csv"),
                      image_roots=[SHARED])
        assert engine.item_graph().n_right == graph.n_right + 1  # rebuilt: the catalogue changed
        assert (tmp_path / "home" / "graph" / "item-board.npz").is_file()
        hits = engine.related([extra[0]["id"]], k=3, score_by="pixie")
        assert [h.item.key for h in hits] == [extra[1]["id"]]  # its only board-mate


def test_related_command(indexed_home):
    runner = CliRunner()
    with Engine(indexed_home, Settings(workers=1)) as engine:
        key = board_items(engine, "sender-100")[0]
    result = runner.invoke(app, ["related", key, "-k", "3", "--explain", "--json", "--home", str(indexed_home)])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and {"sources", "features"} <= set(hits[0]["explanation"])
    table = runner.invoke(app, ["related", key, "--explain", "--home", str(indexed_home)])
    assert table.exit_code == 0 and "related to" in table.output
    bad = runner.invoke(app, ["related", "--home", str(indexed_home)])
    assert bad.exit_code == 1 and "exactly one query" in bad.output


def test_eval_related_command(tmp_path):
    """16 contributors' boards of 4 photos, 30 memberships hidden; the visual baseline is recomputed by hand (on
    4 boards of 6 it is perfect, MRR 1.0, which would check nothing)."""
    manifest = write_csv(clothing_subset(n_boards=16, per_board=4), tmp_path / "clothing.csv")
    out = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["eval-related", str(manifest), "--queries", "30", "--json", str(out),
                                      "--workers", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["queries"] == 30 and data["boards"] == 16 and data["cold_queries"] == 30
    assert set(data["results"]) == {"blend", "pixie", "cooccurrence", "visual", "learned"}
    by_hand = visual_baseline_by_hand(manifest, 30, seed=0)
    assert data["results"]["visual"] == pytest.approx(by_hand)
    assert 0.2 < by_hand["mrr"] < 0.9  # neither hopeless nor perfect: a wrong ranking would show


def test_eval_related_command_with_graph_embeddings(tmp_path):
    """--graph trains PinSage on the graph without the hidden memberships and reports it as its own method; the
    other methods' figures are those of a run without it."""
    manifest = write_csv(clothing_subset(n_boards=8, per_board=4), tmp_path / "clothing.csv")
    runs = {}
    for name, extra in (("plain", []), ("graph", ["--graph", "--graph-epochs", "2"])):
        out = tmp_path / f"{name}.json"
        result = CliRunner().invoke(app, ["eval-related", str(manifest), "--queries", "12", "--learned", "0",
                                          "--json", str(out), "--workers", "1", *extra])
        assert result.exit_code == 0, result.output
        runs[name] = json.loads(out.read_text())
    assert set(runs["graph"]["results"]) == set(runs["plain"]["results"]) | {"graph"}
    assert {m: runs["graph"]["results"][m] for m in runs["plain"]["results"]} == runs["plain"]["results"]
    assert 0.0 <= runs["graph"]["results"]["graph"]["mrr"] <= 1.0
    assert len(runs["graph"]["graph_training"]["history"]) == 2  # one entry per epoch


def visual_baseline_by_hand(manifest, queries: int, seed: int) -> dict:
    """eval-related's "visual" figures computed directly: for each sampled item (each has one board here, which
    is hidden), rank every other item by cosine similarity (ties by row), leave out its near-duplicates, and find
    the first item of its board."""
    import csv

    from viscover.embed import load_embedder
    from viscover.embed.pipeline import ImageJob, embed_images
    from viscover.graph.holdout import hidden_memberships
    from viscover.index import Codec

    rows = list(csv.DictReader(open(manifest)))
    boards = sorted({r["boards"] for r in rows})
    graph = Bipartite.from_edges("item-board", np.arange(len(rows)),
                                 np.array([boards.index(r["boards"]) for r in rows]))
    chosen, _ = hidden_memberships(graph, queries, seed)
    embedder = load_embedder("efficientnet-lite0")
    raw = np.zeros((len(rows), embedder.dim), np.float32)
    for batch in embed_images([ImageJob(i, r["path"]) for i, r in enumerate(rows)], embedder, Settings(workers=1)):
        raw[batch.ids] = batch.vectors
    unit = Codec.fit(raw).floats(raw)
    hits10 = hits50 = rr = 0.0
    for q in chosen:
        sims = unit @ unit[q]
        ranked = [j for j in sorted(range(len(rows)), key=lambda j: (-sims[j], j))
                  if j != q and sims[j] <= 1.0 - Settings().dedup_threshold]
        first = next((rank for rank, j in enumerate(ranked[:50]) if rows[j]["boards"] == rows[q]["boards"]), None)
        hits10 += first is not None and first < 10
        hits50 += first is not None
        rr += 0.0 if first is None else 1.0 / (first + 1)
    return {"hit@10": hits10 / len(chosen), "hit@50": hits50 / len(chosen), "mrr": rr / len(chosen)}


def test_related_metrics_by_hand():
    ranked = [np.array([5, 3, 9]), np.array([1, 2]), np.array([7])]
    relevant = [np.array([9]), np.array([4]), np.array([7, 8])]
    m = related_metrics(ranked, relevant, ks=(1, 2, 3))  # first hits at ranks 3, none, 1
    assert m == pytest.approx({"hit@1": 1 / 3, "hit@2": 1 / 3, "hit@3": 2 / 3, "mrr": (1 / 3 + 0 + 1) / 3})
    assert related_metrics([np.array([4, 2])], [np.array([2])], ks=(1, 2)) == {"hit@1": 0.0, "hit@2": 1.0, "mrr": 0.5}
    assert related_metrics([], [], ks=(1,)) == {"hit@1": 0.0, "mrr": 0.0}


def test_pruning():
    # boards: 0 = {0, 1} alike, 1 = {2, 3} opposite, 2 = {0, 1, 2, 3, 4} broad; item 0 on all three boards
    left = np.array([0, 1, 2, 3, 0, 1, 2, 3, 4, 0])
    right = np.array([0, 0, 1, 1, 2, 2, 2, 2, 2, 1])
    g = Bipartite.from_edges("t", left, right)
    unit = np.array([[1, 0], [1, 0], [0, 1], [0, -1], [1, 0]], np.float32)
    present = np.ones(5, bool)
    coherence, _ = board_coherence(g, unit, present)
    assert coherence[0] == pytest.approx(1.0) and coherence[1] < 0.6
    pruned, report = prune(g, unit, present, PruneParams(min_coherence=0.7))
    assert report.boards_dropped == 2 and pruned.n_edges == 2  # incoherent 1 and broad-ish 2 (coherence 0.6)
    pruned, report = prune(g, unit, present, PruneParams(max_board_size=4))
    assert pruned.n_edges == g.n_edges - 5
    pruned, _ = prune(g, unit, present, PruneParams(popular_degree=1, popular_keep=0.0))
    assert pruned.groups_of(0).tolist() == [0]  # item 0 keeps only its most similar board


def test_engagement_and_ranker_commands(tmp_path, clothing_manifest):
    import csv

    from viscover.rank import LightGBMRanker

    runner = CliRunner()
    home = tmp_path / "home"
    with Engine(home, Settings(workers=1)) as engine:
        engine.ingest(clothing_manifest, image_roots=[SHARED])
        engine.index()
        keys = sorted(board_items(engine, "sender-10"))
        others = sorted(board_items(engine, "sender-100"))
    log = tmp_path / "log.csv"
    with open(log, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["query", "item", "position", "clicked", "saved", "source"])
        for rep in range(30):
            for q in keys[:3]:
                for pos, item in enumerate(keys[3:] + others, start=1):  # board-mates are the ones engaged with
                    w.writerow([q, item, pos, int(item in keys and (rep + pos) % 3 == 0), 0, "random"])
        w.writerow(["nope", keys[0], 1, 1, 0, ""])
    result = runner.invoke(app, ["engagement", "ingest", str(log), "--json", "--home", str(home)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["skipped"] == 1 and report["added"] == 30 * 3 * 9 and "nope" in report["problems"][0]
    trained = runner.invoke(app, ["rank", "train", "--force", "--home", str(home)])
    assert trained.exit_code == 0, trained.output
    assert (home / "rank" / "ranker.txt").is_file() and json.loads(trained.stdout)["saved"]
    with Engine(home, Settings(workers=1)) as engine:
        assert isinstance(engine.related_service().ranker, LightGBMRanker)  # `related` now uses the learned ranker
        assert len(engine.related([keys[0]], k=3)) == 3
    boards = runner.invoke(app, ["rank", "train", "--from-boards", "--queries", "20", "--home", str(home)])
    assert boards.exit_code == 0, boards.output
    report = json.loads(boards.stdout)
    assert report["queries"] == 20 and report["saved"] == (report["metrics"]["learned"]["mrr"]
                                                           >= report["metrics"]["heuristic"]["mrr"])


def test_item_user_graph_from_engagement(tmp_path, clothing_manifest):
    from viscover.graph.build import item_user_graph

    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        engine.ingest(clothing_manifest, image_roots=[SHARED])
        keys = board_items(engine, "sender-10")
        log = write_csv([{"query": keys[0], "item": keys[1], "position": 1, "clicked": 1, "user": "ann"},
                         {"query": keys[0], "item": keys[2], "position": 2, "clicked": 0, "user": "ann"},
                         {"query": keys[0], "item": keys[2], "position": 1, "saved": 1, "user": "bob"},
                         {"query": keys[0], "item": keys[3], "position": 3, "clicked": 1, "user": ""}],
                        tmp_path / "log.csv")
        engine.ingest_engagement(log)
        graph, users = item_user_graph(engine.store)
        item1 = graph.left_index([engine.store.item(keys[1]).id])[0]
    assert users == ["ann", "bob"] and graph.n_left == 24 and graph.n_edges == 2  # engaged, named users only
    assert [users[graph.right_ids[b]] for b in graph.groups_of(int(item1))] == ["ann"]


def test_the_engine_keeps_its_related_service_until_something_changes(tmp_path, clothing_manifest):
    """One service per graph, index and ranker: kept between queries, replaced when a ranker is saved (the next
    query uses it), when the catalogue's boards change (graph rebuilt) or when the index is rebuilt."""
    from viscover.rank import HeuristicRanker, LightGBMRanker

    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        engine.ingest(clothing_manifest, image_roots=[SHARED])
        first = engine.related_service()
        assert first.visual is None and isinstance(first.ranker, HeuristicRanker)  # not indexed yet: graph only
        engine.index()
        indexed = engine.related_service()
        assert indexed is not first and indexed.visual is not None and engine.related_service() is indexed
        unforced = engine.train_ranker(from_boards=True, queries=12, seed=0)
        kept = engine.related_service()
        assert (kept is indexed) != unforced["saved"] and isinstance(kept.ranker, LightGBMRanker) == unforced["saved"]
        report = engine.train_ranker(from_boards=True, queries=12, seed=0, force=True)
        assert report["saved"] and "not_saved_because" not in report
        assert isinstance(engine.related_service().ranker, LightGBMRanker)  # no reopening needed
        assert (tmp_path / "home" / "rank" / "ranker.json").is_file()
        engine.index(rebuild=True)
        assert engine.related_service() is not indexed
