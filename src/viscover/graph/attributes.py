"""Per-item attributes aligned with the nodes of an item graph: what label-match features and biased walks read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ItemAttributes:
    """Per graph node: label code per task (-1 none) and domain code, for label-match features and biased walks."""

    labels: np.ndarray  # (tasks, n_nodes) int32
    domains: np.ndarray  # (n_nodes,) int32
