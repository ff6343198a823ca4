"""Ranking related-item candidates: the Ranker interface, the heuristic, and the LightGBM ranker learned from
engagement logs (position-debiased) or from the catalogue's own boards, with the policy that decides when a learned
ranker replaces the one in use."""

from viscover.rank.base import Ranker
from viscover.rank.heuristic import HeuristicRanker, heuristic_score
from viscover.rank.ranker import LightGBMRanker, load_ranker

__all__ = ["HeuristicRanker", "LightGBMRanker", "Ranker", "heuristic_score", "load_ranker"]
