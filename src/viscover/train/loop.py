"""The training loop, top to bottom: data, cached trunk features, model, then epochs of multi-task steps with
validation and a checkpoint after each; the result is exported as a viscover model folder.

Default (CPU-practical): the trunk is frozen and its pooled features are computed once per image and augmented
view (see `features.py`), so an epoch is only the small head's work. With `finetune_blocks > 0` the last trunk
blocks are trained too, on freshly augmented images at every step (slow on a CPU; the first `warmup_epochs` train
only the new layers, as published).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from viscover.catalog.records import Problem
from viscover.config import Settings
from viscover.errors import ConfigError
from viscover.metrics import ranking_metrics
from viscover.fsutil import atomic_path
from viscover.progress import ProgressFactory, no_progress
from viscover.train.config import TrainConfig
from viscover.train.data import TrainData, load_train_data
from viscover.train.features import trunk_features
from viscover.train.model import UnifiedModel
from viscover.train.sampler import MultiTaskSampler

CHECKPOINT = "checkpoint.pt"
# settings that must match to resume a checkpoint (the rest, e.g. epochs, may change)
RESUME_KEYS = ("manifests", "tasks", "backbone", "dim", "views", "finetune_blocks", "val_split", "seed",
               "balance_domains")


@dataclass
class TrainResult:
    out: Path
    history: list[dict]
    problems: list[Problem] = field(default_factory=list)


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to zero at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def validation_pairs(data: TrainData):
    """(name, task, query rows, gallery rows, queries are in the gallery) to validate on: each stream's validation
    rows against each other, and against every other domain of the same manifest and task (e.g. photo -> catalog)."""
    for s in data.streams:
        if len(s.val_rows) >= 2:
            yield s.name, s.task, s.val_rows, s.val_rows, True
        for o in data.streams:
            if len(s.val_rows) and o.manifest == s.manifest and o.task == s.task and o.domain != s.domain:
                yield f"{s.name}->{o.domain}", s.task, s.val_rows, np.concatenate([o.train_rows, o.val_rows]), False


def validate(model: UnifiedModel, features: np.ndarray, data: TrainData) -> dict[str, dict]:
    """Recall@1 and MAP@R on the validation pairs, float and binary (sign bits of the LayerNorm-centred embedding)."""
    model.eval()
    out = {}
    for name, task, queries, gallery, inside in validation_pairs(data):
        rows = np.unique(np.concatenate([queries, gallery]))
        with torch.no_grad():  # a context, not a decorator: mutation testing skips decorated functions
            emb = model.head(torch.from_numpy(features[rows])).numpy()
        floats = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        signs = np.where(emb > 0, 1.0, -1.0).astype(np.float32)
        q, g = np.searchsorted(rows, queries), np.searchsorted(rows, gallery)
        own = np.searchsorted(gallery, queries) if inside else None  # gallery == queries (sorted) when inside
        labels = data.labels[task][rows]
        # the score functions are called within ranking_metrics, during this iteration
        f = ranking_metrics(lambda b: floats[q[b]] @ floats[g].T, labels[q], labels[g], own, ks=(1,))  # noqa: B023
        s = ranking_metrics(lambda b: signs[q[b]] @ signs[g].T, labels[q], labels[g], own, ks=(1,))  # noqa: B023
        out[name] = {"recall@1": f["recall@1"], "map@r": f["map@r"], "binary_recall@1": s["recall@1"],
                     "queries": f["evaluated_queries"]}
    return out


def train(config: TrainConfig, *, settings: Settings | None = None, resume: bool = False,
          progress: ProgressFactory = no_progress, log: Callable[[str], None] = lambda message: None) -> TrainResult:
    """Train a unified embedding as `config` says and export it to `config.out`."""
    from viscover.train.export import export_model

    config.check()
    settings = (settings or Settings()).replace(workers=config.workers)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)

    data = load_train_data(config.manifests, config.tasks, config.val_split, config.balance_domains)
    log(f"{len(data)} images; " + ", ".join(f"{s.name}: {len(s.train_rows)} train / {len(s.val_rows)} val"
                                             for s in data.streams))
    features, usable, problems = trunk_features(data.locations, config.backbone, config.views, config.seed,
                                                settings, progress)
    problems = data.skipped + problems
    data.drop_rows(~usable)
    model = UnifiedModel(features.shape[2], config.dim, {t: len(c) for t, c in data.classes.items()},
                         config.temperature, config.sampled_classes, config.binary_weight,
                         config.quantization_weight)
    trunk, frozen = None, None
    groups = [{"params": list(model.head.parameters()), "scale": 1.0},
              {"params": list(model.losses.parameters()), "scale": config.proxy_lr_scale}]
    if config.finetune_blocks > 0:
        from viscover.embed.torch_models import load_efficientnet

        trunk = load_efficientnet(config.backbone)
        for p in trunk.parameters():
            p.requires_grad_(False)
        tail = trunk.tail_parameters(config.finetune_blocks)
        for p in tail:
            p.requires_grad_(True)
        frozen = len(trunk.blocks) - config.finetune_blocks
        groups.append({"params": tail, "scale": 0.1})  # pretrained weights move more slowly than new ones
    optimizer = torch.optim.SGD([{"params": g["params"], "lr": config.lr * g["scale"]} for g in groups],
                                lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    sampler = MultiTaskSampler([(s.train_rows, data.labels[s.task][s.train_rows]) for s in data.streams],
                               config.batch_size, config.per_class, seed=config.seed)
    steps = sampler.steps_per_epoch
    total, warmup = steps * config.epochs, steps * config.warmup_epochs
    history: list[dict] = []
    start_epoch = 0
    checkpoint = out / CHECKPOINT
    if resume and checkpoint.is_file():
        start_epoch, history = _restore(checkpoint, config, model, optimizer, sampler, trunk, generator, rng)
        log(f"resumed from {checkpoint} after epoch {start_epoch}")

    for epoch in range(start_epoch, config.epochs):
        model.train()
        started = time.perf_counter()
        sums: dict[str, float] = {}
        tail_on = trunk is not None and epoch >= config.warmup_epochs
        with progress(f"epoch {epoch + 1}/{config.epochs}", steps) as advance:
            for step in range(steps):
                factor = lr_factor(epoch * steps + step, total, warmup)
                for group, spec in zip(optimizer.param_groups, groups):
                    group["lr"] = config.lr * spec["scale"] * factor
                rows, _ = sampler.batch()
                if trunk is None:
                    x = torch.from_numpy(features[rows, rng.integers(0, config.views + 1, len(rows))])
                else:
                    pixels = _augmented_pixels(data, rows, rng, config.backbone, settings)
                    x = trunk(pixels, frozen_blocks=frozen if tail_on else len(trunk.blocks))
                labels = {t: torch.from_numpy(codes[rows]) for t, codes in data.labels.items()}
                loss, parts = model.loss(x, labels, generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                for task, value in parts.items():
                    sums[task] = sums.get(task, 0.0) + value
                advance(1)
        val_features = features[:, 0] if trunk is None else _clean_features(trunk, data, config.backbone, settings,
                                                                            features.shape[2])
        metrics = validate(model, val_features, data)
        record = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - started, 2),
                  "lr": config.lr * lr_factor((epoch + 1) * steps - 1, total, warmup),
                  "loss": {t: v / steps for t, v in sums.items()}, "val": metrics}
        history.append(record)
        log(f"epoch {epoch + 1}/{config.epochs}: loss " + ", ".join(f"{t} {v:.3f}" for t, v in record["loss"].items())
            + "; val R@1 " + ", ".join(f"{n} {m['recall@1']:.3f} (bits {m['binary_recall@1']:.3f})"
                                       for n, m in metrics.items()))
        _save(checkpoint, config, epoch + 1, model, optimizer, sampler, trunk, generator, rng, history)
    final = history[-1]["val"] if history else {}
    if config.rotate_bits and trunk is None:
        _rotate_bits(model, features[:, 0], data, log)
        final = validate(model, features[:, 0], data)
        log("after rotation: val R@1 " + ", ".join(f"{n} {m['recall@1']:.3f} (bits {m['binary_recall@1']:.3f})"
                                                   for n, m in final.items()))
    export_model(model, trunk, config, data, history, out, final)
    return TrainResult(out=out, history=history, problems=problems)


def _rotate_bits(model: UnifiedModel, clean: np.ndarray, data: TrainData, log: Callable[[str], None]) -> None:
    """Fit an ITQ rotation on the training images' embeddings and fold it into the projection (and proxies).
    (Skipped after fine-tuning, whose trunk features would all have to be recomputed first.)"""
    from viscover.train.itq import itq_rotation, quantization_error

    rows = np.unique(np.concatenate([s.train_rows for s in data.streams]))
    model.eval()
    with torch.no_grad():
        emb = model.head(torch.from_numpy(clean[rows])).numpy()
        rotation = itq_rotation(emb)
        before, after = quantization_error(emb), quantization_error(emb, rotation)
        r = torch.from_numpy(rotation.astype(np.float32))
        model.head.proj.weight.copy_(r.T @ model.head.proj.weight)
        for loss in model.losses.values():
            loss.proxies.copy_(loss.proxies @ r)
    log(f"bit rotation (ITQ): quantisation error {before:.4f} -> {after:.4f}")


def _augmented_pixels(data: TrainData, rows: np.ndarray, rng: np.random.Generator, backbone: str,
                      settings: Settings) -> torch.Tensor:
    from viscover.embed.efficientnet import spec_for
    from viscover.embed.pipeline import ImageJob, load_pixels

    spec = spec_for(backbone)
    seeds = rng.integers(0, 2**31, len(rows))
    jobs = [ImageJob(0, data.locations[r], augment_seed=int(seed)) for r, seed in zip(rows, seeds)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # Pillow releases the GIL while decoding
        pixels = list(pool.map(lambda job: load_pixels(job, spec, settings), jobs))
    return torch.from_numpy(np.stack(pixels))


def _clean_features(trunk, data: TrainData, backbone: str, settings: Settings, width: int) -> np.ndarray:
    """Current trunk's features of the clean validation images (fine-tuning changes them every epoch)."""
    from viscover.embed.efficientnet import spec_for
    from viscover.embed.pipeline import ImageJob, load_pixels

    trunk.eval()
    spec = spec_for(backbone)
    rows = np.unique(np.concatenate([s.val_rows for s in data.streams] + [np.zeros(0, np.int64)]))
    out = np.zeros((len(data), width), np.float32)
    for start in range(0, len(rows), 32):
        part = rows[start:start + 32]
        pixels = np.stack([load_pixels(ImageJob(0, data.locations[r]), spec, settings) for r in part])
        with torch.no_grad():
            out[part] = trunk(torch.from_numpy(pixels)).numpy()
    return out


def _save(path: Path, config: TrainConfig, epoch: int, model, optimizer, sampler, trunk, generator, rng,
          history) -> None:
    state = {"config": config.to_dict(), "epoch": epoch, "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "sampler": sampler.state(), "generator": generator.get_state(),
             "rng": rng.bit_generator.state, "history": history,
             "trunk": trunk.state_dict() if trunk is not None else None}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _restore(path: Path, config: TrainConfig, model, optimizer, sampler, trunk, generator, rng):
    state = torch.load(path, weights_only=True)  # tensors and plain data only: never unpickle code
    saved = state["config"]
    different = [k for k in RESUME_KEYS if saved.get(k) != getattr(config, k)]
    if different:
        raise ConfigError(f"{path}: cannot resume, the checkpoint was trained with other {', '.join(different)}; "
                          "use another --out or the same settings")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    sampler.restore(state["sampler"])
    generator.set_state(state["generator"])
    rng.bit_generator.state = state["rng"]
    if trunk is not None and state["trunk"] is not None:
        trunk.load_state_dict(state["trunk"])
    return state["epoch"], state["history"]
