"""Training PinSage, top to bottom: neighbourhoods and hard-negative bands from walks, validation pairs set aside,
then epochs of mini-batches (each batch's computation graph only), Adam, a validation hit-rate and a checkpoint
after each epoch.

Every epoch draws its pairs and negatives from a generator seeded by (seed, epoch), so a run resumed from the
checkpoint of epoch e continues exactly as the uninterrupted run would have (same data, same weights).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from viscover.errors import ConfigError
from viscover.fsutil import atomic_path
from viscover.graph.bipartite import Bipartite
from viscover.graphembed.infer import embed_items, fill_cold
from viscover.graphembed.loss import max_margin_loss
from viscover.graphembed.model import PinSage, node_features
from viscover.graphembed.neighbourhoods import Neighbourhoods, visit_bands, walk_neighbourhoods
from viscover.graphembed.pairs import board_pairs, hard_negatives, walk_pairs, without_pairs

CHECKPOINT = "graph-checkpoint.pt"
# settings that must match to resume (epochs may grow)
RESUME_KEYS = ("dim", "hidden", "layers", "neighbours", "walk_steps", "walk_alpha", "hard_steps", "hard_band",
               "hard_pool", "batch", "lr", "margin", "hard_cap", "pairs_per_board", "val_pairs", "centre", "skip",
               "walk_pairs", "seed")


@dataclass
class GraphTrainConfig:
    dim: int = 128  # output embedding size
    hidden: int = 256  # convolution width
    layers: int = 2
    neighbours: int = 10  # T: neighbourhood size
    walk_steps: int = 200  # Pixie steps per item for its neighbourhood
    walk_alpha: float = 0.5  # restart probability
    hard_steps: int = 2000  # Pixie steps per item for its hard-negative band
    hard_band: tuple[float, float] = (0.1, 0.3)  # band of the reached items' visit ranking (relative)
    hard_pool: int = 32  # band items kept per item
    hard_cap: int = 6  # curriculum: epoch e uses min(e, hard_cap) hard negatives per query
    epochs: int = 8
    batch: int = 256  # positive pairs per step
    lr: float = 3e-4  # 1e-3 drifted from the content vectors too fast on icons (hit@10 0.62 vs 0.67)
    margin: float = 0.1
    pairs_per_board: int = 50  # positive pairs drawn per board and epoch
    val_pairs: int = 200  # positive pairs set aside for the validation hit-rate
    val_k: int = 10
    centre: bool = True  # content vectors minus their mean before normalising (see model.unit_content)
    cold_visual: bool = True  # embed items without boards from their visual neighbours (see infer.fill_cold)
    skip: bool = True  # content path straight to the output (see model.PinSage)
    walk_pairs: int = 10  # positives per item from its walk co-visits, besides the board pairs (0: boards only)
    seed: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hard_band"] = list(self.hard_band)
        return d


@dataclass
class GraphTrainResult:
    model: PinSage
    neighbourhoods: Neighbourhoods  # the walks' (used in training); items without boards empty
    inference_neighbourhoods: Neighbourhoods  # the same, items without boards filled by visual neighbours
    features: np.ndarray  # (n, f) node features the model reads (content + log degree)
    embeddings: np.ndarray  # (n, dim) unit rows, final model
    report: dict = field(default_factory=dict)  # config, per-epoch loss and validation hit-rate, timings


def validation_hit_rate(emb: np.ndarray, pairs: np.ndarray, k: int) -> float:
    """Share of held-out pairs whose positive is among the query's k nearest items (query excluded)."""
    if len(pairs) == 0:
        return float("nan")
    sims = emb[pairs[:, 0]] @ emb.T
    sims[np.arange(len(pairs)), pairs[:, 0]] = -np.inf
    target = sims[np.arange(len(pairs)), pairs[:, 1]]
    rank = (sims > target[:, None]).sum(axis=1)
    return float((rank < k).mean())


def train_graph(graph: Bipartite, content: np.ndarray, config: GraphTrainConfig = GraphTrainConfig(), *,
                out: Path | None = None, resume: bool = False,
                log: Callable[[str], None] = lambda _: None) -> GraphTrainResult:
    """Train PinSage on `graph` (its left nodes' content vectors in `content`, row = node). Deterministic for a
    seed: torch's deterministic kernels are on while training (the gathers' backward otherwise accumulates in
    thread order), so a resumed run ends with bit-identical weights."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        return _train(graph, content, config, out, resume, log)
    finally:
        torch.use_deterministic_algorithms(before)


def _train(graph: Bipartite, content: np.ndarray, config: GraphTrainConfig, out: Path | None, resume: bool,
           log: Callable[[str], None]) -> GraphTrainResult:
    c = config
    t0 = time.perf_counter()
    # ---- data: walks, features, validation pairs ---------------------------------------------------------------
    nbrs = walk_neighbourhoods(graph, c.neighbours, steps=c.walk_steps, alpha=c.walk_alpha, seed=c.seed)
    bands = visit_bands(graph, steps=c.hard_steps, alpha=c.walk_alpha, seed=c.seed, band=c.hard_band,
                        band_min=c.neighbours, pool=c.hard_pool)
    feats_np = node_features(graph, content, c.centre)
    nbrs_infer = fill_cold(nbrs, content, c.centre) if c.cold_visual else nbrs
    feats = torch.from_numpy(feats_np)
    val = board_pairs(graph, 1, np.random.default_rng([c.seed, 0xA1]))
    val = val[np.random.default_rng([c.seed, 0xA2]).permutation(len(val))[:c.val_pairs]]
    t_walks = time.perf_counter() - t0
    log(f"walks and bands: {t_walks:.2f} s, {graph.n_left} items, {len(val)} validation pairs")

    # ---- model, optimiser, checkpoint --------------------------------------------------------------------------
    torch.manual_seed(c.seed)
    model = PinSage(feats.shape[1], c.hidden, c.dim, c.layers, skip=c.skip)
    optimizer = torch.optim.Adam(model.parameters(), lr=c.lr)
    history: list[dict] = []
    start = 0
    path = Path(out) / CHECKPOINT if out is not None else None
    if resume and path is not None and path.exists():
        start, history = _restore(path, c, model, optimizer)
        log(f"resumed after epoch {start}")

    # ---- epochs ------------------------------------------------------------------------------------------------
    for epoch in range(start, c.epochs):
        te = time.perf_counter()
        rng = np.random.default_rng([c.seed, epoch])
        pairs = board_pairs(graph, c.pairs_per_board, rng)
        if c.walk_pairs > 0:
            pairs = np.concatenate([pairs, walk_pairs(nbrs.index, nbrs.weight, c.walk_pairs, rng)])
        pairs = without_pairs(pairs, val, graph.n_left)
        pairs = pairs[rng.permutation(len(pairs))]
        n_hard = min(epoch, c.hard_cap)
        model.train()
        losses = []
        for s in range(0, len(pairs) - 1, c.batch):
            batch = pairs[s:s + c.batch]
            if len(batch) < 2:
                break
            negs, mask = hard_negatives(bands, batch[:, 0], batch[:, 1], n_hard, rng)
            nodes = np.concatenate([batch[:, 0], batch[:, 1], negs.reshape(-1)])
            emb = model(nodes, nbrs, feats)
            b = len(batch)
            hard = emb[2 * b:].reshape(b, n_hard, emb.shape[1])
            loss = max_margin_loss(emb[:b], emb[b:2 * b], hard, torch.from_numpy(mask), c.margin)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        emb_all = embed_items(model, nbrs_infer, feats_np)
        hit = validation_hit_rate(emb_all, val, c.val_k)
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else float("nan"),
               f"val_hit@{c.val_k}": hit, "pairs": int(len(pairs)), "hard": n_hard,
               "seconds": round(time.perf_counter() - te, 3)}
        history.append(row)
        log(f"epoch {epoch + 1}/{c.epochs}: loss {row['loss']:.4f}, val hit@{c.val_k} {hit:.3f}, "
            f"{row['seconds']:.1f} s")
        if path is not None:
            _save(path, c, epoch + 1, model, optimizer, history)

    if start >= c.epochs:  # nothing trained in this run: the restored model's embeddings (else: the last epoch's)
        emb_all = embed_items(model, nbrs_infer, feats_np)
    report = {"config": c.to_dict(), "history": history, "resumed_after_epoch": start,
              "walk_seconds": round(t_walks, 3), "seconds": round(time.perf_counter() - t0, 3)}
    return GraphTrainResult(model, nbrs, nbrs_infer, feats_np, emb_all, report)


def _save(path: Path, config: GraphTrainConfig, epoch: int, model, optimizer, history) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"config": config.to_dict(), "epoch": epoch, "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "history": history}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _restore(path: Path, config: GraphTrainConfig, model, optimizer) -> tuple[int, list[dict]]:
    state = torch.load(path, weights_only=True)  # tensors and plain data only: never unpickle code
    saved, wanted = state["config"], config.to_dict()
    defaults = GraphTrainConfig().to_dict()  # a key newer than the checkpoint: it was trained with the default
    different = [k for k in RESUME_KEYS if saved.get(k, defaults[k]) != wanted[k]]
    if different:
        raise ConfigError(f"{path}: cannot resume, the checkpoint was trained with other {', '.join(different)}")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["epoch"]), list(state["history"])
