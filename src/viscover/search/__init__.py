"""Search: a query vector -> filtered, de-duplicated, hydrated results."""

from viscover.search.results import SearchHit, collapse_duplicates

__all__ = ["SearchHit", "collapse_duplicates"]
