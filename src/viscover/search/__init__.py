"""Search: a query vector -> filtered, de-duplicated, hydrated results; and the service that indexes a home's
catalogue and searches it by image or item."""

from viscover.index.sync import IndexReport
from viscover.search.results import SearchHit, collapse_duplicates
from viscover.search.service import SearchService

__all__ = ["IndexReport", "SearchHit", "SearchService", "collapse_duplicates"]
