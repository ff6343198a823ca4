"""Related items: candidates from every registered generator (Pixie random walks, board co-occurrence, visual
neighbours), ranked (learned ranker, else heuristic) and explained; `RelatedService` runs them for a catalogue home."""

from viscover.related.items import RelatedItems, RelatedResult
from viscover.related.params import RelatedParams
from viscover.related.service import RelatedHit, RelatedService

__all__ = ["RelatedHit", "RelatedItems", "RelatedParams", "RelatedResult", "RelatedService"]
