"""The learned ranker of related items: LightGBM trees over candidate features, trained on a debiased engagement log.

Training rows are (query item, shown item) pairs of the log. Their features are what `RelatedItems.related` computes
at serving time (`RelatedItems.features_for`, one call per query item for all of its shown items): walk visits,
co-occurrence (raw and log), visual similarity, popularity, label match and same domain (FEATURES). Labels are
"clicked or saved", saves weighing more, and the position bias is removed through the weights with the
examination propensity of each position (viscover.rank.debias).

Objective: pointwise binary cross-entropy (seed-papers section 4, "gradient-boosted trees with a pointwise loss on
save propensity"), not lambdarank: the propensity weights are per impression, and a pointwise loss takes them as
they are (with a pairwise/listwise loss the debiasing would have to be re-derived per pair); most logged lists have
zero or one engagement, which gives lambdarank little to learn from while a pointwise loss still learns from their
negatives; and the output is an engagement probability, comparable across queries and blendable with other scores.
Impressions with identical (query, item, label) are merged by summing their weights: the loss is the same, the
data much smaller. The trees are constrained to be non-decreasing in the relatedness signals (MONOTONE): the log
only covers the items that were shown, and without the constraint a few heavily weighted positives at low
positions could teach the trees that less similar items are better, which they then apply to the many
candidates never shown. In 8 simulated logs like the one of tests/test_rank.py (relevance 0.3, 0.2 or 0.15 for
a shared category vs 0.1, examination 1/p^0.7 or 1/p, two seeds), held-out NDCG@10 over each query's top-50
candidates went from 0.38-0.99 without the constraint to 0.94-1.0 with it (default debiasing), and the debiased
ranker beat one trained on raw clicks in 8 of 8 logs with the constraint, 6 of 8 without.

Evaluation: a seeded fraction of query items is held out. On their logged impressions the learned score and the
heuristic score (as `related` applies it: `heuristic_score(x, cold)` with the query's cold flag) are compared by
AUC (impressions weighted by their chance of having been examined) and NDCG@10 over each query's shown items
with the clicks over expected clicks of each (query, item) pair as gain, so that neither credits the old ranking
for the positions it chose. Only shown items can be judged: the numbers compare orderings of what the log contains.

Saved as `ranker.txt` (LightGBM's text model) and `ranker.json` (format, feature names, model checksum, training
parameters and report), both written atomically, the JSON last; no pickle. Deterministic given the seed.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from viscover.candidates.features import FEATURES, Features
from viscover.errors import BadRequestError, ConfigError, Remedy
from viscover.fsutil import atomic_write_bytes
from viscover.graph.bipartite import Bipartite
from viscover.rank.base import Ranker
from viscover.rank.debias import LabelParams, Propensity, debiased_labels, estimate_propensity
from viscover.rank.heuristic import HeuristicRanker, heuristic_score

FORMAT = "viscover-ranker/1"
MODEL_FILE = "ranker.txt"
META_FILE = "ranker.json"
# Evidence of relatedness: more walk visits, shared boards, visual similarity or label agreement never lowers the
# score. Popularity and same-domain are left free (either direction can be right for a catalogue).
MONOTONE = ("pixie", "pixie_log", "cooccurrence", "cooccurrence_log", "visual", "label_match")


class LightGBMRanker:
    """A trained LightGBM booster scoring feature rows: higher is better. It reads the features it was trained on
    (FEATURES) by name. The query's cold flag is not needed: the query_degree feature tells the trees."""

    name = "lightgbm"

    def __init__(self, booster, meta: dict | None = None, threads: int = 1):
        self.booster, self.meta, self.threads = booster, dict(meta or {}), threads

    def score(self, features: Features | np.ndarray, cold: bool = False) -> np.ndarray:
        """The booster's prediction per row (an engagement probability for log-trained rankers)."""
        x = Features.of(features)
        if len(x) == 0:
            return np.zeros(0)
        return self.booster.predict(x.select(FEATURES), num_threads=self.threads)

    def feature_importance(self) -> dict[str, float]:
        """Share of the total split gain per feature."""
        gain = self.booster.feature_importance(importance_type="gain")
        total = max(float(gain.sum()), 1e-12)
        return {name: round(float(g) / total, 4) for name, g in zip(FEATURES, gain)}

    def save(self, folder: Path) -> None:
        """Write the model text and its JSON (format, features, checksum, meta) atomically, the JSON last."""
        folder = Path(folder)
        text = self.booster.model_to_string().encode()
        meta = {**self.meta, "format": FORMAT, "features": list(FEATURES), "model_file": MODEL_FILE,
                "model_sha256": hashlib.sha256(text).hexdigest()}
        atomic_write_bytes(folder / MODEL_FILE, text)
        atomic_write_bytes(folder / META_FILE, json.dumps(meta, indent=2).encode())


def load_ranker(folder: Path) -> Ranker:
    """The learned ranker saved in `folder`, else the heuristic one (never trained, or a first save interrupted
    before its JSON, which is written last). A damaged ranker, or one trained on other features than this version
    computes, is a ConfigError whose remedy is to train it again."""
    folder = Path(folder)
    meta_path, model_path = folder / META_FILE, folder / MODEL_FILE
    if not meta_path.is_file():
        return HeuristicRanker()
    retrain = Remedy("train-ranker", path=str(folder))
    try:
        meta = json.loads(meta_path.read_text())
        text = model_path.read_bytes()
    except (OSError, ValueError) as e:
        raise ConfigError(f"the saved ranker is unreadable ({e})", remedy=retrain) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConfigError(f"the saved ranker is not a {FORMAT} ranker", remedy=retrain)
    if meta.get("features") != list(FEATURES):
        raise ConfigError(f"the saved ranker was trained on features {meta.get('features')}, this version "
                          f"computes {list(FEATURES)}", remedy=retrain)
    if hashlib.sha256(text).hexdigest() != meta.get("model_sha256"):
        raise ConfigError(f"the saved ranker's model does not match its {META_FILE} (damaged or half-written)",
                          remedy=retrain)
    import lightgbm as lgb

    try:
        booster = lgb.Booster(model_str=text.decode())
    except lgb.basic.LightGBMError as e:
        raise ConfigError(f"the saved ranker's model is not a LightGBM model ({e})", remedy=retrain) from None
    return LightGBMRanker(booster, meta, threads=int(meta.get("params", {}).get("threads", 1)))


# ---- training --------------------------------------------------------------------------------------------------
class FeatureSource(Protocol):
    """What training reads from the related-items service (viscover.related.RelatedItems): its graph, its
    parameters (the cold threshold; kept in the ranker's meta) and the features it computes for given candidates."""

    graph: Bipartite
    params: object  # a dataclass with cold_degree

    def features_for(self, query_nodes, candidate_nodes, weights=None, want_domain: int = -1) -> Features: ...


@dataclass(frozen=True)
class RankParams:
    """LightGBM and evaluation settings of ranker training."""

    holdout: float = 0.2  # fraction of query items held out for evaluation
    seed: int = 0
    rounds: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_data_in_leaf: int = 20
    lambda_l2: float = 1.0
    threads: int = 1
    monotone: tuple[str, ...] = MONOTONE  # features whose increase may never lower the score
    labels: LabelParams = LabelParams()


@dataclass
class TrainReport:
    """What training did and how the learned ranker compares with the heuristic on held-out queries."""

    impressions: int = 0  # rows of the log
    used: int = 0  # impressions whose query and item are graph nodes
    dropped: int = 0  # impressions of items no longer in the catalogue (or shown for themselves)
    positives: int = 0
    queries: int = 0
    train_queries: int = 0
    heldout_queries: int = 0
    propensity: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # {"learned": {...}, "heuristic": {...}} on held-out queries
    feature_importance: dict = field(default_factory=dict)
    seconds: float = 0.0
    saved_to: str | None = None
    heldout_item_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ranker: LightGBMRanker | None = None

    def to_dict(self) -> dict:
        """The report as JSON-ready values (without the ranker and the held-out ids)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("heldout_item_ids", "ranker")}
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass
class TrainingRows:
    """Impressions with graph nodes and features; `x` has one row per distinct (query, item) pair."""

    query: np.ndarray  # query node per impression
    item: np.ndarray  # item node per impression
    pair: np.ndarray  # row of x per impression
    x: np.ndarray  # (pairs, len(FEATURES)) float32
    pair_query: np.ndarray  # query node per pair
    pair_item: np.ndarray
    keep: np.ndarray  # mask over the log's impressions that were usable


def training_rows(service: FeatureSource, graph: Bipartite, events) -> TrainingRows:
    """Map logged item ids to graph nodes and compute features, one `features_for` call per query item."""
    q = graph.left_index(events.query_item_id)
    i = graph.left_index(events.item_id)
    keep = (q >= 0) & (i >= 0) & (q != i)
    q, i = q[keep], i[keep]
    codes, pair = np.unique(q * max(graph.n_left, 1) + i, return_inverse=True)  # sorted by query, then item
    pairs = np.stack(np.divmod(codes, max(graph.n_left, 1)), 1).reshape(-1, 2)
    pair = np.asarray(pair, np.int64).reshape(-1)
    x = np.zeros((len(pairs), len(FEATURES)), np.float32)
    starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]]) if len(pairs) else np.zeros(0, np.int64)
    for a, b in zip(starts, np.r_[starts[1:], len(pairs)].astype(np.int64)):
        x[a:b] = service.features_for([pairs[a, 0]], pairs[a:b, 1]).matrix
    return TrainingRows(q, i, pair, x, pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64), keep)


def train_ranker(service: FeatureSource, graph: Bipartite | None, events, folder: Path | None = None,
                 params: RankParams = RankParams()) -> TrainReport:
    """Train on a log (viscover.catalog.engagement.EngagementLog: internal item ids), evaluate on held-out query
    items, save to `folder` when given. Raises BadRequestError when the log cannot train anything."""
    start = time.perf_counter()
    graph = graph if graph is not None else service.graph
    report = TrainReport(impressions=len(events), params=_params_dict(params))
    rows = training_rows(service, graph, events)
    report.used, report.dropped = int(rows.keep.sum()), int((~rows.keep).sum())
    if report.used == 0:
        raise BadRequestError("no usable impressions: the log is empty or names no item of the catalogue",
                              remedy=Remedy("ingest-engagement"))
    pos = events.position[rows.keep]
    clicked, saved = events.clicked[rows.keep], events.saved[rows.keep]
    randomized = events.randomized[rows.keep]
    lp = params.labels
    propensity = estimate_propensity(pos, (clicked > 0) | (saved > 0) if lp.clicks else saved > 0, randomized,
                                     prior=lp.prior, floor=lp.floor)
    report.propensity = propensity.to_dict()
    y, w = debiased_labels(pos, clicked, saved, propensity, lp)
    report.positives = int(y.sum())
    if report.positives == 0:
        raise BadRequestError("the log has no " + ("clicks or saves" if lp.clicks else "saves")
                              + "; there is nothing to learn from")

    queries = np.unique(rows.query)
    rng = np.random.default_rng(params.seed)
    n_hold = int(round(params.holdout * len(queries))) if len(queries) >= 2 else 0
    n_hold = min(max(n_hold, 1 if params.holdout > 0 and len(queries) >= 2 else 0), len(queries) - 1)
    held = np.sort(rng.permutation(queries)[:n_hold])
    report.queries, report.heldout_queries = len(queries), len(held)
    report.train_queries = len(queries) - len(held)
    report.heldout_item_ids = graph.left_ids[held].astype(np.int64)
    is_held = np.isin(rows.query, held)

    # merge impressions of one (pair, label): same loss, fewer rows
    tr = ~is_held
    key = rows.pair[tr] * 2 + y[tr].astype(np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    weight = np.bincount(inv, weights=w[tr])
    x_train, y_train = rows.x[uniq // 2], (uniq % 2).astype(np.float64)
    ranker = fit_ranker(x_train, y_train, params, weight=weight, objective="binary", min_sum_hessian_in_leaf=1e-3)

    if len(held):
        report.metrics = _heldout_metrics(service, ranker, rows, is_held, y, pos, clicked, saved, propensity, lp)
    report.feature_importance = ranker.feature_importance()
    report.saved_to = str(folder) if folder is not None else None
    report.seconds = time.perf_counter() - start
    # the walk budget and other service settings shape the raw features: kept to diagnose a changed setting
    related_params = asdict(service.params) if is_dataclass(service.params) else {}
    ranker.meta = {"params": report.params, "related_params": related_params, "report": report.to_dict()}
    report.ranker = ranker
    if folder is not None:
        ranker.save(Path(folder))
    return report


def fit_ranker(x: np.ndarray, y: np.ndarray, params: RankParams, *, weight: np.ndarray | None = None,
               group: np.ndarray | None = None, **overrides) -> LightGBMRanker:
    """Fit LightGBM trees to feature rows (FEATURES order) and labels with the shared settings (`lgb_params`);
    `group` gives query sizes for ranking objectives, `overrides` the objective and its settings."""
    import lightgbm as lgb

    data = lgb.Dataset(x, y, weight=weight, group=group, feature_name=list(FEATURES), free_raw_data=True)
    booster = lgb.train(lgb_params(params, **overrides), data, num_boost_round=params.rounds)
    return LightGBMRanker(booster, threads=params.threads)


def lgb_params(params: RankParams, **overrides) -> dict:
    """LightGBM settings shared by every ranker: seeded, deterministic, monotone in the similarity signals."""
    out = {"learning_rate": params.learning_rate, "num_leaves": params.num_leaves,
           "min_data_in_leaf": params.min_data_in_leaf, "lambda_l2": params.lambda_l2, "seed": params.seed,
           "deterministic": True, "force_row_wise": True, "num_threads": params.threads, "verbosity": -1}
    if params.monotone:
        out["monotone_constraints"] = [int(f in params.monotone) for f in FEATURES]
        out["monotone_constraints_method"] = "advanced"
    return {**out, **overrides}


def _params_dict(params: RankParams) -> dict:
    return asdict(params)


def _heldout_metrics(service: FeatureSource, ranker: LightGBMRanker, rows: TrainingRows, is_held: np.ndarray,
                     y: np.ndarray, pos: np.ndarray, clicked, saved, propensity: Propensity, lp: LabelParams) -> dict:
    """Learned ranker vs heuristic on the held-out queries' logged impressions: AUC with impressions weighted by
    their chance of having been examined (positives 1 + save_boost * saved, negatives e(p)), and NDCG@10 over each
    query's shown items with gain = clicks over expected clicks of the (query, item) pair, sum of positive
    weights / sum of e(p) over its impressions (an estimate of its relevance that the old ranking's positions do
    not inflate)."""
    eval_lp = LabelParams(clicks=lp.clicks, save_boost=lp.save_boost, debias=True, scheme="examination",
                          prior=lp.prior, floor=lp.floor)
    _, w_eval = debiased_labels(pos, clicked, saved, propensity, eval_lp)
    held_pairs = np.unique(rows.pair[is_held])
    xq = rows.x[held_pairs]
    degree = service.graph.left_degree()
    cold = degree[rows.pair_query[held_pairs]] < service.params.cold_degree
    scores = {"learned": ranker.score(xq),
              "heuristic": np.where(cold, heuristic_score(xq, True), heuristic_score(xq, False))}
    where = np.searchsorted(held_pairs, rows.pair[is_held])
    engaged_weight = np.bincount(where, weights=(y * w_eval)[is_held], minlength=len(held_pairs))
    expected = np.bincount(where, weights=propensity(pos[is_held]), minlength=len(held_pairs))
    gain = engaged_weight / np.maximum(expected, 1e-12)
    out = {}
    for name, s in scores.items():
        out[name] = {"auc": weighted_auc(y[is_held], s[where], w_eval[is_held]),
                     "ndcg@10": ndcg_at_k(rows.pair_query[held_pairs], gain, s, 10,
                                          tie=rows.pair_item[held_pairs])}
    out["heldout_impressions"] = int(is_held.sum())
    out["heldout_pairs"] = len(held_pairs)
    return out


# ---- metrics ---------------------------------------------------------------------------------------------------
def weighted_auc(y, scores, weights=None) -> float | None:
    """Probability that a random positive outscores a random negative (ties count half), both drawn by weight;
    None when either class is absent."""
    y = np.asarray(y) > 0
    s = np.asarray(scores, np.float64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, np.float64)
    _, idx = np.unique(s, return_inverse=True)
    wp = np.bincount(idx, weights=w * y)
    wn = np.bincount(idx, weights=w * ~y)
    if wp.sum() <= 0 or wn.sum() <= 0:
        return None
    below = np.cumsum(wn) - wn
    return round(float((wp * (below + 0.5 * wn)).sum() / (wp.sum() * wn.sum())), 4)


def ndcg_at_k(groups, gains, scores, k: int = 10, tie=None) -> float | None:
    """Mean NDCG@k over groups with any positive gain: each group's rows ranked by score (ties by `tie`, then
    row order); None when no group has a positive gain."""
    groups = np.asarray(groups)
    gains = np.asarray(gains, np.float64)
    scores = np.asarray(scores, np.float64)
    tie = np.arange(len(groups)) if tie is None else np.asarray(tie)
    order = np.lexsort((tie, -scores, groups))
    g, gain = groups[order], gains[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, np.int64)
    values = []
    for a, b in zip(starts, np.r_[starts[1:], len(g)].astype(np.int64)):
        ranked = gain[a:b]
        ideal = np.sort(ranked)[::-1][:k]
        discount = 1.0 / np.log2(np.arange(2, min(k, len(ranked)) + 2))
        best = float((ideal * discount[:len(ideal)]).sum())
        if best > 0:
            values.append(float((ranked[:k] * discount[:len(ranked[:k])]).sum()) / best)
    return round(float(np.mean(values)), 4) if values else None
