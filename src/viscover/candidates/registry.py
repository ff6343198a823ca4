"""Every candidate generator related items run, in the order they are listed in explanations.

Adding a source of candidates (say, neighbours in a graph-neural embedding) is one new module with a class that has a
`name` and a `propose` method (viscover.candidates.base.CandidateGenerator) and is built from `CandidateSources`, plus
one line here. Its candidates are then merged, deduplicated, explained ("sources") and checked by
tests/contracts/test_candidate_generators.py; rankers see it once viscover.candidates.features gives it features.
"""

from __future__ import annotations

from viscover.candidates.base import CandidateGenerator, CandidateSources, GeneratorFactory
from viscover.candidates.cooccurrence import CooccurrenceCandidates
from viscover.candidates.pixie import PixieCandidates
from viscover.candidates.visual import VisualCandidates

REGISTRY: dict[str, GeneratorFactory] = {}


def register(name: str, factory: GeneratorFactory) -> None:
    """Add a generator under its source name (what explanations and `score_by` call it)."""
    if name in REGISTRY:
        raise ValueError(f"a candidate generator named {name!r} is already registered")
    REGISTRY[name] = factory


def build_generators(sources: CandidateSources) -> list[CandidateGenerator]:
    """One instance of every registered generator over these sources, in registry order."""
    generators = []
    for name, factory in REGISTRY.items():
        generator = factory(sources)
        if generator.name != name:
            raise ValueError(f"generator registered as {name!r} calls itself {generator.name!r}")
        generators.append(generator)
    return generators


register(PixieCandidates.name, PixieCandidates)
register(CooccurrenceCandidates.name, CooccurrenceCandidates)
register(VisualCandidates.name, VisualCandidates)
