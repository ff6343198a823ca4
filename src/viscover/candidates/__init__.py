"""Candidates for related items: generators (Pixie walks, board co-occurrence, visual neighbours) behind one
interface, their merged candidate set, and the named features rankers score."""

from viscover.candidates.base import CandidateGenerator, CandidateSources, GeneratorFactory, without_query
from viscover.candidates.candidate_set import CandidateSet
from viscover.candidates.features import FEATURES, Features, features
from viscover.candidates.neighbours import NodeVectorIndex, VisualNeighbours
from viscover.candidates.query import CandidateParams, CandidateQuery, build_query
from viscover.candidates.registry import REGISTRY, build_generators, register
from viscover.candidates.walk import PixieParams, PixieWalker

__all__ = ["FEATURES", "REGISTRY", "CandidateGenerator", "CandidateParams", "CandidateQuery", "CandidateSet",
           "CandidateSources", "Features", "GeneratorFactory", "NodeVectorIndex", "PixieParams", "PixieWalker",
           "VisualNeighbours", "build_generators", "build_query", "features", "register", "without_query"]
