"""Training a unified embedding: multi-task metric learning with NormSoftmax proxies (Zhai et al. 2019)."""

from viscover.train.config import TrainConfig

__all__ = ["TrainConfig"]
