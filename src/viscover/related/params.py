"""The related-items service's parameters, from the settings in one place."""

from __future__ import annotations

from dataclasses import dataclass

from viscover.candidates.query import CandidateParams
from viscover.candidates.walk import PixieParams
from viscover.config import Settings


@dataclass(frozen=True)
class RelatedParams(CandidateParams):
    """What the candidate generators read (walks, pool sizes, when a query is cold), and what counts as a
    near-duplicate of the query."""

    dedup_threshold: float = 0.05  # candidates this close to the query (cosine distance) are its near-duplicates

    @classmethod
    def from_settings(cls, settings: Settings, *, seed: int = 0) -> "RelatedParams":
        """The parameters the settings give (walk budget, restart, early stopping, domain bias, duplicate
        threshold), walks and board sampling seeded by `seed`. The engine and `eval-related` both build theirs
        here: built apart, they had drifted (the engine set the domain bias, eval-related the seed; the bias only
        acts when a domain is wanted, which eval-related never asks, so neither's results changed)."""
        s = settings
        return cls(pixie=PixieParams(steps=s.pixie_steps, alpha=s.pixie_alpha, n_p=s.pixie_np, n_v=s.pixie_nv,
                                     bias=s.pixie_bias, seed=seed),
                   dedup_threshold=s.dedup_threshold)

    @property
    def candidates(self) -> CandidateParams:
        """What the candidate generators and the query builder read (these parameters are those, and more)."""
        return self
