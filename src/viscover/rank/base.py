"""What a ranker of related-item candidates is: a scorer of feature rows, higher is better."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from viscover.candidates.features import Features


class Ranker(Protocol):
    """Scores the candidates of one query from their features (viscover.candidates.features), higher is better.
    `cold` says the query has (almost) no board memberships: a heuristic trusts looks over walks then; a learned
    ranker reads the same from the query_degree feature. A bare matrix is read as columns in FEATURES order."""

    name: str

    def score(self, features: Features | np.ndarray, cold: bool = False) -> np.ndarray: ...
