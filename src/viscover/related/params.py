"""The related-items service's parameters, from the settings in one place."""

from __future__ import annotations

from dataclasses import dataclass

from viscover.candidates.base import CandidateParams
from viscover.candidates.walk import PixieParams
from viscover.config import Settings


@dataclass(frozen=True)
class RelatedParams:
    """Walks, candidate pools, when a query is cold, and what counts as a near-duplicate of the query."""

    pixie: PixieParams = PixieParams()
    pool: int = 200  # candidates kept from each generator
    cold_degree: int = 1  # a query set with fewer board memberships than this is "cold": seed from visual neighbours
    visual_seeds: int = 10  # visual neighbours used as extra walk seeds for cold queries
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
        """What the candidate generators and the query builder read."""
        return CandidateParams(pixie=self.pixie, pool=self.pool, cold_degree=self.cold_degree,
                               visual_seeds=self.visual_seeds)
