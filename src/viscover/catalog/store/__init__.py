"""The catalogue store: SQLite by default, any SQLAlchemy URL (PostgreSQL) too. All SQL of viscover lives in this
package: `CatalogStore` opens the database and its transactions; `writes`, `reads`, `arrays` and `events` hold the
statements of each job, as functions over a connection; `sql` holds what they share."""

from viscover.catalog.store.catalog_store import CatalogStore
from viscover.catalog.store.reads import Filters
from viscover.catalog.store.writes import UpsertCounts

__all__ = ["CatalogStore", "Filters", "UpsertCounts"]
