"""Every training setting, typed, with the published defaults (Zhai & Wu 2019) where they apply to a frozen trunk."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from viscover.config import setting
from viscover.errors import ConfigError


_s = setting


@dataclass
class TrainConfig:
    """What `viscover train` does; saved in every checkpoint and model folder."""

    manifests: list[str] = _s([], "Manifests to train from (CSV, JSONL, Parquet).")
    tasks: list[str] = _s([], "Tasks to train: label.<task> columns; one NormSoftmax head per task.")
    out: str = _s("viscover-model", "Output model folder (model.onnx, model.json, labels, report, checkpoint).")
    backbone: str = _s("efficientnet-lite0", "Pretrained trunk: efficientnet-lite0/1/2.")
    dim: int = _s(256, "Embedding dimension d.")
    temperature: float = _s(0.05, "NormSoftmax temperature s.")
    epochs: int = _s(15, "Epochs; one epoch passes once over the largest stream (validation peaked near 10-15).")
    batch_size: int = _s(96, "Images per step, split evenly across the (manifest, task) streams.")
    per_class: int = _s(4, "Images per class in a batch (class-balanced sampling).")
    sampled_classes: int = _s(2048, "Softmax over the batch's classes plus random others up to this many "
                                    "(class subsampling); tasks with fewer classes use all of them.")
    binary_weight: float = _s(0.0, "Weight of the same losses on the embedding's sign bits (straight-through); "
                                   "measured worse than the ITQ rotation alone, so off by default.")
    quantization_weight: float = _s(0.0, "Weight of a penalty pulling every embedding dimension to equal "
                                         "magnitude (measured no help on its own; off by default).")
    rotate_bits: bool = _s(True, "Fold an ITQ rotation into the last layer: same float results, better bits.")
    lr: float = _s(0.01, "Peak learning rate (SGD, momentum 0.9).")
    proxy_lr_scale: float = _s(1.0, "Learning-rate multiplier for the proxies.")
    weight_decay: float = _s(1e-4, "Weight decay.")
    warmup_epochs: int = _s(1, "Epochs of linear learning-rate warm-up.")
    views: int = _s(4, "Augmented views cached per image (frozen trunk), besides the clean one.")
    finetune_blocks: int = _s(0, "Also train the last N trunk blocks on augmented images (slow on a CPU).")
    balance_domains: bool = _s(True, "Give each domain of a manifest (photo, catalog, ...) its own equal share of "
                                     "every batch (measured: grocery photo->catalog R@1 0.527 -> 0.642).")
    val_split: str = _s("val", "Rows with this split are held out for validation, not trained on.")
    seed: int = _s(0, "Random seed (sampling, augmentation, initialisation).")
    workers: int = _s(0, "Feature-extraction worker processes; 0: one per core.")

    @classmethod
    def help(cls, name: str) -> str:
        """The setting's help text with its default, for `viscover train --help`."""
        f = next(f for f in dataclasses.fields(cls) if f.name == name)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        return f"{f.metadata['help']} (default: {default})"

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check(self) -> None:
        if not self.manifests:
            raise ConfigError("give at least one manifest to train from")
        if not self.tasks:
            raise ConfigError("give at least one --task (a label.<task> column of the manifests)")
        for name, minimum in (("dim", 2), ("epochs", 1), ("batch_size", 2), ("per_class", 1), ("sampled_classes", 2)):
            if getattr(self, name) < minimum:
                raise ConfigError(f"{name}={getattr(self, name)}: must be at least {minimum}")
        if not 0 < self.temperature <= 1:
            raise ConfigError(f"temperature={self.temperature}: expected a value in (0, 1], e.g. 0.05")
