"""The union of what the generators proposed for one query: one score column per generator name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np


@dataclass(eq=False)
class CandidateSet:
    """Candidate graph nodes (ascending), each generator's score for them (0 where it did not propose a node) and
    which generators proposed each. Columns are keyed by generator name, in the order the generators ran."""

    nodes: np.ndarray  # int64, ascending when merged
    scores: dict[str, np.ndarray]  # generator name -> float64 score per node
    proposed: dict[str, np.ndarray]  # generator name -> bool per node

    @classmethod
    def merge(cls, parts: Mapping[str, tuple[np.ndarray, np.ndarray]], names: Sequence[str] = ()) -> "CandidateSet":
        """Union of generator outputs {name: (nodes, scores)}; `names` get a column even when absent from `parts`
        (e.g. every registered generator, so that features can always read theirs)."""
        nodes = np.unique(np.concatenate([n for n, _ in parts.values()] + [np.zeros(0, np.int64)])).astype(np.int64)
        columns = list(dict.fromkeys([*names, *parts]))
        scores = {name: np.zeros(len(nodes)) for name in columns}
        proposed = {name: np.zeros(len(nodes), bool) for name in columns}
        for name, (n, score) in parts.items():
            pos = np.searchsorted(nodes, n)
            scores[name][pos] = score
            proposed[name][pos] = True
        return cls(nodes, scores, proposed)

    def score(self, name: str) -> np.ndarray:
        """A generator's score column (zeros when that generator has no column here)."""
        return self.scores[name] if name in self.scores else np.zeros(len(self.nodes))

    def sources(self, i: int) -> list[str]:
        """Names of the generators that proposed the i-th candidate, in column order."""
        return [name for name, mask in self.proposed.items() if mask[i]]

    def maxima(self) -> dict[str, float]:
        """The largest score of each column (0 for an empty set): what features normalise by."""
        return {name: float(column.max(initial=0.0)) for name, column in self.scores.items()}

    def drop(self, mask: np.ndarray) -> "CandidateSet":
        """A copy without the candidates where `mask` is true."""
        keep = ~np.asarray(mask, bool)
        return CandidateSet(self.nodes[keep], {n: c[keep] for n, c in self.scores.items()},
                            {n: m[keep] for n, m in self.proposed.items()})

    def at(self, nodes: np.ndarray) -> "CandidateSet":
        """The columns at the given nodes (any order, any nodes): 0 and not proposed where a node is no candidate.
        For the features of logged (query, shown item) pairs, which generators may not have proposed."""
        wanted = np.asarray(nodes, np.int64)
        known = np.zeros(len(wanted), bool)
        pos = np.zeros(len(wanted), np.int64)
        if len(self.nodes):
            pos = np.minimum(np.searchsorted(self.nodes, wanted), len(self.nodes) - 1)
            known = self.nodes[pos] == wanted
        scores = {}
        for name, column in self.scores.items():
            scores[name] = np.zeros(len(wanted))
            scores[name][known] = column[pos[known]]
        proposed = {name: known & mask[pos] if len(self.nodes) else known.copy()
                    for name, mask in self.proposed.items()}
        return CandidateSet(wanted, scores, proposed)

    def __len__(self) -> int:
        return len(self.nodes)
