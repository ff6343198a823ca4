"""The features of (query, candidate) pairs that rankers score, each column by name.

FEATURES is also the saved ranker format's feature list (viscover.rank.ranker): a learned ranker only loads when it
was trained on exactly these names in this order, so a new feature means retraining.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from viscover.candidates.candidate_set import CandidateSet
from viscover.candidates.cooccurrence import CooccurrenceCandidates
from viscover.candidates.pixie import PixieCandidates
from viscover.candidates.visual import VisualCandidates
from viscover.graph.attributes import ItemAttributes
from viscover.graph.bipartite import Bipartite

FEATURES = ("pixie", "pixie_log", "cooccurrence", "cooccurrence_log", "visual", "popularity", "label_match",
            "same_domain", "query_degree")
PIXIE, COOCCURRENCE, VISUAL = PixieCandidates.name, CooccurrenceCandidates.name, VisualCandidates.name


@dataclass(frozen=True, eq=False)
class Features:
    """Feature rows: a float32 matrix with one named column per feature (FEATURES unless said otherwise)."""

    matrix: np.ndarray  # (rows, len(names)) float32
    names: tuple[str, ...] = FEATURES

    def __post_init__(self):
        if self.matrix.ndim != 2 or self.matrix.shape[1] != len(self.names):
            raise ValueError(f"expected feature rows of shape (n, {len(self.names)}), got {self.matrix.shape}")

    @classmethod
    def of(cls, x: "Features | np.ndarray") -> "Features":
        """`x` itself, or a bare matrix read as columns in FEATURES order."""
        return x if isinstance(x, Features) else cls(np.asarray(x, np.float32))

    @classmethod
    def from_columns(cls, n: int, columns: Mapping[str, np.ndarray | float],
                     names: tuple[str, ...] = FEATURES) -> "Features":
        """n rows from {name: values (or one value for every row)}; names without a column are 0."""
        unknown = set(columns) - set(names)
        if unknown:
            raise ValueError(f"unknown feature(s) {sorted(unknown)}; known: {list(names)}")
        matrix = np.zeros((n, len(names)), np.float32)
        for i, name in enumerate(names):
            if name in columns:
                matrix[:, i] = columns[name]
        return cls(matrix, names)

    def column(self, name: str) -> np.ndarray:
        """The values of one feature, by name."""
        try:
            return self.matrix[:, self.names.index(name)]
        except ValueError:
            raise KeyError(f"no feature {name!r}; features: {list(self.names)}") from None

    def select(self, names: tuple[str, ...]) -> np.ndarray:
        """The matrix of the named columns, in that order (a ranker reads the features it was trained on by name,
        whatever order or extra columns these rows have)."""
        if names == self.names:
            return self.matrix
        missing = [n for n in names if n not in self.names]
        if missing:
            raise ValueError(f"missing feature(s) {missing}; these rows have {list(self.names)}")
        return self.matrix[:, [self.names.index(n) for n in names]]

    def rows(self, index) -> "Features":
        """A subset (or reordering) of the rows."""
        return Features(self.matrix[index], self.names)

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def __len__(self) -> int:
        return len(self.matrix)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """The matrix, so that numpy functions take feature rows as they are."""
        if copy:
            return np.array(self.matrix, dtype=dtype, copy=True)
        return self.matrix if dtype is None else self.matrix.astype(dtype)


def features(c: CandidateSet, graph: Bipartite, query_nodes: np.ndarray, attrs: ItemAttributes | None, *,
             maxima: Mapping[str, float] | None = None) -> Features:
    """The features of each candidate for a query. Walk visits and shared boards are given both divided by their
    largest value (over `maxima`, default the set's own: the features of logged pairs are normalised by the full
    candidate set's) and as log(1 + raw); `visual` is the candidate's cosine similarity to the query."""
    n = len(c)
    if n == 0:
        return Features.from_columns(0, {})
    maxima = c.maxima() if maxima is None else maxima
    pixie, cooc = c.score(PIXIE), c.score(COOCCURRENCE)
    cols: dict[str, np.ndarray | float] = {
        "pixie": pixie / max(float(maxima.get(PIXIE, 0.0)), 1e-12),
        "pixie_log": np.log1p(pixie),
        "cooccurrence": cooc / max(float(maxima.get(COOCCURRENCE, 0.0)), 1e-12),
        "cooccurrence_log": np.log1p(cooc),
        "visual": c.score(VISUAL),
        "popularity": np.log1p(graph.left_degree(c.nodes)),
    }
    q = np.asarray(query_nodes, np.int64)
    if attrs is not None and len(q):
        if attrs.labels.size:
            q_labels = attrs.labels[:, q]  # (tasks, queries)
            cand = attrs.labels[:, c.nodes]  # (tasks, candidates)
            match = (cand[:, :, None] == q_labels[:, None, :]) & (cand[:, :, None] >= 0)
            cols["label_match"] = match.any(axis=2).mean(axis=0)
        cols["same_domain"] = np.isin(attrs.domains[c.nodes], attrs.domains[q])
    if len(q):  # lets a learned ranker weigh signals differently for cold and warm queries
        cols["query_degree"] = np.log1p(graph.left_degree(q).sum())
    return Features.from_columns(n, cols)
