"""Learned ranking from a simulated engagement log with a known ground truth.

A small clothing catalogue (120 real photos, 6 contributors' boards) is ingested and indexed once. For every item,
its top-20 related items (heuristic ranking) are shown in 50 sessions: 80% in that order, 20% shuffled
(source="random"). A shown item is clicked with probability relevance * examination(position), relevance being
hidden from the ranker (0.3 when the two items share a category label, else 0.1) and examination 1 / position^0.7.
(With 0.8 vs 0.1 every learned ranker, debiased or not, orders the pool perfectly: the label-match feature alone
decides. A weaker contrast lets the old ranking's position effect compete with relevance, which is what debiasing
is for.)
"""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest

from conftest import CLOTHING, needs_data

pytestmark = needs_data

N_BOARDS, PER_BOARD, SHOWN, SESSIONS, RANDOM_SHARE, DECAY = 6, 20, 20, 50, 0.2, 0.7
REL_SAME, REL_OTHER, SAVE_RATE = 0.3, 0.1, 0.3
BAD_ROWS = [  # (query, item, position) templates; "Q"/"I" are replaced by real ids
    ("Q", "no-such-item", "1", "unknown item id"),
    ("Q", "I", "abc", "not a positive integer"),
    ("Q", "I", "2.5", "not a positive integer"),
    ("Q", "I", "0", "not a positive integer"),
    ("Q", "I", "", "missing 'position'"),
    ("no-such-query", "I", "3", "unknown item id"),
]


def examination(position) -> np.ndarray:
    return 1.0 / np.asarray(position, np.float64) ** DECAY


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Engine, service, hidden relevance, and the ingested simulated log (with a few bad rows)."""
    from viscover import Engine, Settings
    from viscover.catalog.engagement import ingest_engagement
    from viscover.datasets import clothing_rows, write_manifest

    tmp = tmp_path_factory.mktemp("rank")
    by_board: dict[str, list[dict]] = {}
    for row in clothing_rows(CLOTHING):
        by_board.setdefault(row["boards"], []).append(row)
    boards = sorted(b for b, rows in by_board.items() if len(rows) >= PER_BOARD)[:N_BOARDS]
    manifest = write_manifest([r for b in boards for r in by_board[b][:PER_BOARD]], tmp / "clothing.csv")
    engine = Engine(tmp / "home", Settings(workers=1))
    assert engine.ingest(tmp / "clothing.csv", image_roots=[CLOTHING]).counts.added == manifest
    engine.index()
    service = engine.related_service()
    graph = service.graph
    ids, _, labels = engine.store.item_attributes()
    keys = {i: it.key for i, it in engine.store.items_by_ids(ids.tolist()).items()}
    category = labels.get("category", {})
    node_label = np.array([category.get(int(i), f"none-{i}") for i in graph.left_ids])

    def relevance(q_nodes, i_nodes):
        return np.where(node_label[np.asarray(q_nodes)] == node_label[np.asarray(i_nodes)], REL_SAME, REL_OTHER)

    rng = np.random.default_rng(7)
    rows = []
    for q in range(graph.n_left):
        shown = service.related([q], k=SHOWN).nodes
        assert len(shown) == SHOWN
        for _ in range(SESSIONS):
            randomized = rng.random() < RANDOM_SHARE
            order = rng.permutation(shown) if randomized else shown
            pos = np.arange(1, len(order) + 1)
            click = rng.random(len(order)) < relevance(np.full(len(order), q), order) * examination(pos)
            save = click & (rng.random(len(order)) < SAVE_RATE)
            for n, p, c, s in zip(order, pos, click, save):
                rows.append([keys[int(graph.left_ids[q])], keys[int(graph.left_ids[n])], int(p), int(c), int(s),
                             "u1", "2024-05-01T10:00:00", "random" if randomized else "ranked"])
    q0, i0 = rows[0][0], rows[0][1]
    bad = [[q.replace("Q", q0) if q == "Q" else q, i.replace("I", i0) if i == "I" else i, p, 0, 0, "", "", ""]
           for q, i, p, _ in BAD_ROWS]
    log = tmp / "events.csv"
    with open(log, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["query", "item", "position", "clicked", "saved", "user", "timestamp", "source", "extra"])
        w.writerows(bad + rows)
    report = ingest_engagement(engine.store, log, batch=20_000)
    yield {"engine": engine, "service": service, "graph": graph, "relevance": relevance, "keys": keys,
           "report": report, "good_rows": rows, "tmp": tmp}
    engine.close()


@pytest.fixture(scope="module")
def events(world):
    from viscover.catalog.engagement import engagement_rows

    return engagement_rows(world["engine"].store)


@pytest.fixture(scope="module")
def trained(world, events):
    """The debiased ranker (default "examination" weights, saved), the "ipw" variant, and one trained on raw
    clicks (same seed, same held-out queries)."""
    from viscover.rank.debias import LabelParams
    from viscover.rank.ranker import RankParams, train_ranker

    folder = world["tmp"] / "ranker"
    debiased = train_ranker(world["service"], world["graph"], events, folder, RankParams(seed=0))
    naive = train_ranker(world["service"], world["graph"], events, None,
                         RankParams(seed=0, labels=LabelParams(debias=False)))
    ipw = train_ranker(world["service"], world["graph"], events, None,
                       RankParams(seed=0, labels=LabelParams(scheme="ipw")))
    return {"debiased": debiased, "naive": naive, "ipw": ipw, "folder": folder}


# ---- (a) ingest ------------------------------------------------------------------------------------------------
def test_engagement_ingest_counts_and_bad_rows(world, events):
    report, good = world["report"], world["good_rows"]
    assert report.rows == len(good) + len(BAD_ROWS)
    assert report.added == len(good) == len(events)
    assert report.clicks == sum(r[3] for r in good) and report.saves == sum(r[4] for r in good)
    assert report.ignored_columns == ["extra"]
    problems = {p.where: p.reason for p in report.skipped}
    assert len(problems) == len(BAD_ROWS)
    for line, (_, _, _, reason) in enumerate(BAD_ROWS, start=2):  # header is line 1
        assert reason in problems[f"events.csv line {line}"], problems
    assert "'no-such-item'" in problems["events.csv line 2"] and "'no-such-query'" in problems["events.csv line 7"]
    assert events.randomized.mean() == pytest.approx(RANDOM_SHARE, abs=0.05)
    assert set(np.unique(events.position)) == set(range(1, SHOWN + 1))
    # stored ids are the catalogue's internal ids of the logged keys
    by_key = {k: i for i, k in world["keys"].items()}
    assert events.query_item_id[0] == by_key[good[0][0]] and events.item_id[-1] == by_key[good[-1][1]]


def test_engagement_other_formats_and_unusable_files(world, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from viscover.catalog.engagement import EngagementRow, ingest_engagement, read_engagement_log
    from viscover.catalog.records import Problem
    from viscover.errors import BadManifestError

    q, i = world["good_rows"][0][:2]
    jsonl = tmp_path / "log.jsonl"
    jsonl.write_text("\n".join([json.dumps({"query": q, "item": i, "position": 2, "clicked": True}),
                                json.dumps({"query": q, "item": i}),  # no position
                                "{not json",
                                json.dumps({"query": q, "item": i, "position": 1, "saved": "maybe"}),
                                json.dumps({"query": q, "item": q, "position": 1})]) + "\n")
    rows = list(read_engagement_log(jsonl))
    assert isinstance(rows[0], EngagementRow) and rows[0].clicked == 1 and rows[0].position == 2
    assert [type(r) for r in rows[1:]] == [Problem] * 4
    assert "line 2" in rows[1].where and "missing 'position'" in rows[1].reason
    assert "line 3" in rows[2].where and "saved" in rows[3].reason and "its own query" in rows[4].reason

    table = pa.table({"query": [q, q, q], "item": [i, i, "nope"], "position": [1, 5, 2], "clicked": [1, 0, 1],
                      "saved": [0, 0, 1], "source": ["random", None, None]})
    pq.write_table(table, tmp_path / "log.parquet")
    rows = list(read_engagement_log(tmp_path / "log.parquet"))
    assert [r.position for r in rows] == [1, 5, 2] and rows[0].source == "random" and rows[1].source is None

    no_position = tmp_path / "bad.csv"
    no_position.write_text("query,item,clicked\na,b,1\n")
    with pytest.raises(BadManifestError, match="'position'"):
        read_engagement_log(no_position)
    with pytest.raises(BadManifestError, match="no such file"):
        ingest_engagement(world["engine"].store, tmp_path / "missing.csv")


def test_engagement_store_batches_reingest_and_item_deletion(tmp_path):
    """Without images: a bare store, small batches, re-ingest appends, deleting an item deletes its events."""
    from viscover.catalog.engagement import (clear_engagement, engagement_count, engagement_rows,
                                             ingest_engagement)
    from viscover.catalog.records import ImageRecord, ItemRecord
    from viscover.catalog.store import CatalogStore

    store = CatalogStore(f"sqlite:///{tmp_path / 'c.sqlite'}")
    store.upsert([ItemRecord(key=k, source=k, image=ImageRecord(f"{i:064x}", 8, 8, "JPEG", 10, f"/x/{k}.jpg"))
                  for i, k in enumerate("abcd")])
    log = tmp_path / "log.tsv"
    log.write_text("query\titem\tposition\tclicked\tsaved\tsource\n"
                   + "".join(f"a\t{k}\t{p}\t{int(p == 1)}\t0\trandom\n" for p, k in enumerate("bcd", 1))
                   + "b\tzz\t1\t1\t0\t\n" + "b\ta\t2\tyes\ttrue\t\n")
    report = ingest_engagement(store, log, batch=2)  # batches split good and bad rows
    assert (report.rows, report.added, report.clicks, report.saves) == (5, 4, 2, 1)
    assert [str(p) for p in report.skipped] == ["log.tsv line 5: unknown item id: item 'zz' not in the catalogue; "
                                                "ingest the items first"]
    ev = engagement_rows(store)
    assert ev.position.tolist() == [1, 2, 3, 2] and ev.randomized.tolist() == [True, True, True, False]
    assert ingest_engagement(store, log).added == 4 and engagement_count(store) == 8  # appended, not merged
    assert store.delete_items(["b"]) and engagement_count(store) == 4  # events of b (as query or item) go too
    assert clear_engagement(store) == 4 and len(engagement_rows(store)) == 0
    store.close()


# ---- (b) propensities ------------------------------------------------------------------------------------------
def test_propensity_recovered_from_random_slice(events):
    from viscover.rank.debias import estimate_propensity

    y = (events.clicked > 0) | (events.saved > 0)
    truth = examination(np.arange(1, SHOWN + 1))
    from_random = estimate_propensity(events.position, y, events.randomized)
    from_all = estimate_propensity(events.position, y, None)
    err_random = np.abs(from_random.values - truth)
    err_all = np.abs(from_all.values - truth)
    print(f"\npropensity truth      {np.round(truth, 3).tolist()}\n"
          f"from random slice     {np.round(from_random.values, 3).tolist()} (max abs err {err_random.max():.3f})\n"
          f"from all traffic      {np.round(from_all.values, 3).tolist()} (max abs err {err_all.max():.3f})")
    assert from_random.randomized and not from_all.randomized
    assert from_random.impressions.sum() == events.randomized.sum()
    assert np.all(np.diff(from_random.values) <= 0) and from_random.values[0] == 1.0
    assert err_random.max() < 0.1 and err_random.mean() < 0.03  # sampling noise of a 24k-impression slice
    # the ranked traffic confounds position with relevance: that estimate is worse (too steep)
    assert err_all.mean() > err_random.mean()
    assert (from_all.values[4:] < truth[4:]).mean() > 0.5


def test_random_slice_removes_the_ranking_confound():
    """A log whose lists are sorted by relevance: click rates fall with position far faster than examination does;
    only the shuffled slice measures examination."""
    from viscover.rank.debias import estimate_propensity

    rng = np.random.default_rng(1)
    lists, size = 3000, 10
    rel = rng.random((lists, size))
    randomized = rng.random(lists) < RANDOM_SHARE
    shown = np.where(randomized[:, None], rel, -np.sort(-rel, axis=1))  # ranked lists: most relevant first
    pos = np.tile(np.arange(1, size + 1), (lists, 1))
    clicks = rng.random((lists, size)) < shown * examination(pos)
    truth = examination(np.arange(1, size + 1))
    good = estimate_propensity(pos.ravel(), clicks.ravel(), np.repeat(randomized, size))
    confounded = estimate_propensity(pos.ravel(), clicks.ravel())
    assert np.abs(good.values - truth).max() < 0.08
    assert np.all(confounded.values[3:] < truth[3:] - 0.05)  # far too steep: positions over-corrected


def test_propensity_smoothing_and_bounds():
    from viscover.rank.debias import LabelParams, debiased_labels, estimate_propensity, isotonic_decreasing

    assert isotonic_decreasing(np.array([3.0, 1.0, 2.0, 0.5]), np.ones(4)).tolist() == [3.0, 1.5, 1.5, 0.5]
    pos = np.repeat(np.arange(1, 4), 100)
    clicks = np.zeros(300, bool)
    clicks[:50] = True  # position 1: 50%, positions 2-3: never
    p = estimate_propensity(pos, clicks, prior=0.0)
    assert p.values[0] == 1.0 and p.values[1] == p.values[2] == 0.05  # clipped at the floor
    smoothed = estimate_propensity(pos, clicks)  # 20 pseudo-impressions at the overall rate (1/6) per position
    assert smoothed.values[1] == pytest.approx((20 / 6) / (50 + 20 / 6), rel=1e-9)
    assert p([1, 2, 99]).tolist() == [1.0, 0.05, 0.05]
    y, w = debiased_labels([1, 2, 3], [1, 1, 0], [0, 1, 0], p, LabelParams(save_boost=1.0, scheme="ipw"))
    assert y.tolist() == [1, 1, 0] and w.tolist() == [1.0, 40.0, 1.0]  # positives / e(p), saves count double
    y, w = debiased_labels([1, 2, 3, 1], [1, 1, 0, 0], [0, 1, 0, 0], p, LabelParams(save_boost=1.0))
    assert y.tolist() == [1, 1, 0, 0] and w.tolist() == [1.0, 2.0, 0.05, 1.0]  # negatives weigh e(p)
    assert debiased_labels([1, 2], [0, 0], [1, 0], p, LabelParams(clicks=False))[0].tolist() == [1, 0]
    assert debiased_labels([2], [1], [0], p, LabelParams(debias=False))[1].tolist() == [1.0]
    assert estimate_propensity([1, 2], [0, 0]).values.tolist() == [1.0, 1.0]  # no clicks: no evidence of decay


# ---- (c) learned ranker vs heuristic vs raw clicks ---------------------------------------------------------------
def _hidden_ndcg(world, scorer, queries, pool=50):
    """NDCG@10 against the hidden relevance over each held-out query's top-`pool` heuristic candidates."""
    from viscover.rank.ranker import ndcg_at_k

    service, relevance = world["service"], world["relevance"]
    groups, gains, scores, ties = [], [], [], []
    for q in queries:
        cands = service.related([q], k=pool).nodes
        x = service.features_for([q], cands)
        groups.append(np.full(len(cands), q))
        gains.append((relevance(np.full(len(cands), q), cands) == REL_SAME).astype(float))
        scores.append(scorer(x, q))
        ties.append(cands)
    return ndcg_at_k(np.concatenate(groups), np.concatenate(gains), np.concatenate(scores), 10,
                     tie=np.concatenate(ties))


def test_learned_ranker_beats_heuristic_and_raw_clicks(world, trained):
    from viscover.rank import heuristic_score

    deb, naive = trained["debiased"], trained["naive"]
    service, graph = world["service"], world["graph"]
    held = graph.left_index(deb.heldout_item_ids)
    assert np.array_equal(deb.heldout_item_ids, naive.heldout_item_ids) and len(held) == 24
    degree = graph.left_degree()

    def heuristic(x, q):  # as `related` applies it: the query's cold flag
        return heuristic_score(x, bool(degree[q] < service.params.cold_degree))

    hidden = {"heuristic": _hidden_ndcg(world, heuristic, held),
              "debiased": _hidden_ndcg(world, lambda x, q: deb.ranker.score(x), held),
              "ipw": _hidden_ndcg(world, lambda x, q: trained["ipw"].ranker.score(x), held),
              "raw clicks": _hidden_ndcg(world, lambda x, q: naive.ranker.score(x), held)}
    print(f"\nheld-out NDCG@10 vs hidden relevance (top-50 pool): {hidden}"
          f"\nreport (logged, debiased gains): debiased {deb.metrics}\n  ipw {trained['ipw'].metrics}"
          f"\n  raw clicks {naive.metrics}\nfeature importance: {deb.feature_importance}"
          f"\ntrain seconds {deb.seconds:.2f}")
    assert hidden["debiased"] > hidden["heuristic"] + 0.1
    assert hidden["debiased"] > hidden["raw clicks"] + 0.005
    assert hidden["ipw"] > hidden["heuristic"] + 0.1
    # the training report measures the same on the logged held-out impressions
    m = deb.metrics
    assert m["learned"]["auc"] > m["heuristic"]["auc"] and m["learned"]["ndcg@10"] > m["heuristic"]["ndcg@10"]
    assert deb.queries == 120 and deb.heldout_queries == 24 and deb.used == len(world["good_rows"])
    assert deb.propensity["estimated_from"] == "random slice"
    assert deb.feature_importance["label_match"] == max(deb.feature_importance.values())


def test_training_is_deterministic(world, events):
    from viscover.rank.ranker import RankParams, train_ranker

    few = events.subset(np.isin(events.query_item_id, np.unique(events.query_item_id)[:20]))
    a = train_ranker(world["service"], world["graph"], few, None, RankParams(seed=3, rounds=30))
    b = train_ranker(world["service"], world["graph"], few, None, RankParams(seed=3, rounds=30))
    assert a.ranker.booster.model_to_string() == b.ranker.booster.model_to_string()
    assert a.metrics == b.metrics and a.heldout_queries == 4


def test_training_refuses_unusable_logs(world, events):
    from viscover.errors import BadRequestError, Remedy
    from viscover.rank.ranker import train_ranker

    with pytest.raises(BadRequestError, match="no usable impressions") as refused:
        train_ranker(world["service"], world["graph"], events.subset(np.zeros(len(events), bool)))
    assert refused.value.remedy == Remedy("ingest-engagement") and "`" not in str(refused.value)  # no CLI hint
    no_clicks = events.subset(np.arange(len(events)) < 200)
    no_clicks.clicked[:] = 0
    no_clicks.saved[:] = 0
    with pytest.raises(BadRequestError, match="no clicks or saves"):
        train_ranker(world["service"], world["graph"], no_clicks)


# ---- (d) save and load -------------------------------------------------------------------------------------------
def test_save_load_round_trip(world, trained, tmp_path):
    from viscover.errors import ConfigError, Remedy
    from viscover.rank import HeuristicRanker
    from viscover.rank.ranker import META_FILE, MODEL_FILE, load_ranker

    folder, ranker = trained["folder"], trained["debiased"].ranker
    loaded = load_ranker(folder)
    rng = np.random.default_rng(0)
    x = world["service"].features_for([0], np.arange(1, world["graph"].n_left))
    x = np.concatenate([x, rng.random((50, x.shape[1]), np.float32)])
    assert np.array_equal(loaded.score(x), ranker.score(x))
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["features"] == list(ranker.feature_importance()) and meta["report"]["metrics"]
    assert not list(folder.glob("*.pkl")) and (folder / MODEL_FILE).read_text().startswith("tree")

    assert isinstance(load_ranker(tmp_path), HeuristicRanker) and isinstance(load_ranker(tmp_path / "absent"),
                                                                              HeuristicRanker)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / MODEL_FILE).write_text((folder / MODEL_FILE).read_text().replace("tree", "trex", 1))
    (damaged / META_FILE).write_text((folder / META_FILE).read_text())
    with pytest.raises(ConfigError, match="does not match"):
        load_ranker(damaged)
    (damaged / MODEL_FILE).write_text((folder / MODEL_FILE).read_text())
    (damaged / META_FILE).write_text(json.dumps({**meta, "features": ["pixie"]}))
    with pytest.raises(ConfigError, match="trained on features"):
        load_ranker(damaged)
    (damaged / MODEL_FILE).write_text("not a model")
    (damaged / META_FILE).write_text(json.dumps({**meta, "model_sha256": hashlib.sha256(b"not a model").hexdigest()}))
    with pytest.raises(ConfigError, match="not a LightGBM model"):
        load_ranker(damaged)
    (damaged / META_FILE).write_text(json.dumps({**meta, "format": "other/1"}))
    with pytest.raises(ConfigError, match="not a viscover-ranker/1 ranker"):
        load_ranker(damaged)
    (damaged / MODEL_FILE).unlink()
    with pytest.raises(ConfigError, match="unreadable") as unreadable:
        load_ranker(damaged)
    # the fix is named, not phrased: each shell says how to retrain (no CLI command in the message)
    assert unreadable.value.remedy == Remedy("train-ranker", path=str(damaged)) and "`" not in str(unreadable.value)


def test_a_ranker_is_saved_only_when_it_beats_the_heuristic(tmp_path):
    """The save policy: saved when at least as good on the metric (or a figure is missing, or forced), under the
    home's write lock; otherwise the report says why with both figures and names no command-line flag (the shells
    phrase the force-save remedy)."""
    from viscover.errors import Remedy
    from viscover.rank.policy import not_saved_remedy, save_if_better, should_save

    def report(learned, heuristic):
        return {"metrics": {"learned": {"mrr": learned}, "heuristic": {"mrr": heuristic}}}

    assert should_save(report(0.5, 0.5), "mrr", False) == (True, None)
    assert should_save(report(None, 0.5), "mrr", False)[0] and should_save({}, "mrr", False)[0]
    assert should_save(report(0.4, 0.5), "mrr", True) == (True, None)

    class Lock:
        held_for = []

        def held(self):
            import contextlib

            @contextlib.contextmanager
            def hold():
                Lock.held_for.append("save")
                yield
            return hold()

    class Saver:
        saved_to = None

        def save(self, folder):
            Saver.saved_to = folder

    lost = report(0.4, 0.5)
    assert not save_if_better(Saver(), lost, "mrr", tmp_path, force=False, write_lock=Lock())
    assert lost["saved"] is False and Saver.saved_to is None and Lock.held_for == []
    assert lost["not_saved_because"] == "held-out mrr 0.4000 is below the heuristic's 0.5000; related items keep " \
                                       "the heuristic"
    assert not_saved_remedy(lost) == Remedy("force-save")
    won = report(0.6, 0.5)
    assert save_if_better(Saver(), won, "mrr", tmp_path, force=False, write_lock=Lock())
    assert won["saved"] is True and Saver.saved_to == tmp_path and Lock.held_for == ["save"]
    assert "not_saved_because" not in won and not_saved_remedy(won) is None


# ---- (e) serving -------------------------------------------------------------------------------------------------
def test_ranker_plugs_into_related_items(world, trained):
    from viscover.rank import LightGBMRanker
    from viscover.rank.ranker import load_ranker
    from viscover.related import RelatedItems

    service, graph, relevance = world["service"], world["graph"], world["relevance"]
    ranked = RelatedItems(service.graph, service.visual, service.attrs, service.image_of,
                          ranker=load_ranker(trained["folder"]), params=service.params)
    held = graph.left_index(trained["debiased"].heldout_item_ids)
    changed, precision = 0, {"heuristic": [], "learned": []}
    for q in held:
        before, after = service.related([q], k=10), ranked.related([q], k=10)
        changed += not np.array_equal(before.nodes, after.nodes)
        assert np.all(np.diff(after.scores) <= 0) and q not in after.nodes
        np.testing.assert_allclose(after.scores, ranked.ranker.score(after.features), rtol=1e-6)
        for name, r in (("heuristic", before), ("learned", after)):
            precision[name].append(float((relevance(np.full(len(r.nodes), q), r.nodes) == REL_SAME).mean()))
    mean = {k: round(float(np.mean(v)), 3) for k, v in precision.items()}
    print(f"\nheld-out precision@10 (same category): {mean}; order changed for {changed}/{len(held)} queries")
    assert changed >= len(held) // 2
    assert mean["learned"] > mean["heuristic"]

    # the engine loads a ranker saved under <home>/rank when it builds its related-items service
    from viscover import Engine, Settings

    engine = world["engine"]
    trained["debiased"].ranker.save(engine.home.root / "rank")
    with Engine(engine.home.root, Settings(workers=1)) as fresh:
        assert isinstance(fresh.related_service().ranker, LightGBMRanker)
        key = world["keys"][int(graph.left_ids[held[0]])]
        hits = fresh.related([key], k=10)
        expected = ranked.related([held[0]], k=10).nodes
        assert [h.item.key for h in hits] == [world["keys"][int(graph.left_ids[n])] for n in expected]
