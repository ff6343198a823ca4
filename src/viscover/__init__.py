"""viscover: an open-source visual discovery engine (visual search, related items, shop the look).

The public API, and all that the CLI and the server import: the Engine (one catalogue home), its settings,
errors and result types, and the offline jobs that need no home (training, evaluation, dataset manifests).
Names other than the settings and errors load on first use, so `import viscover` stays cheap for `--help`.
"""

from importlib import import_module
from typing import TYPE_CHECKING

from viscover.config import Settings, save_settings
from viscover.errors import (BadImageError, BadManifestError, BadRequestError, ConfigError, DiskFullError,
                             IndexCorruptError, ModelError, NotFoundError, Remedy, UnavailableError, ViscoverError)

__version__ = "0.1.0"

# public name -> (module, name in it)
_LAZY = {
    "Engine": ("viscover.engine", "Engine"),
    "IndexReport": ("viscover.engine", "IndexReport"),
    "IngestReport": ("viscover.catalog.ingest", "IngestReport"),
    "VectorImportReport": ("viscover.search.importing", "VectorImportReport"),
    "Item": ("viscover.catalog.records", "Item"),
    "Naming": ("viscover.catalog.naming", "Naming"),
    "Filters": ("viscover.catalog.store", "Filters"),
    "BoardSummary": ("viscover.catalog.browse", "BoardSummary"),
    "SearchHit": ("viscover.search.results", "SearchHit"),
    "RelatedHit": ("viscover.related.service", "RelatedHit"),
    "SceneObjects": ("viscover.shop", "SceneObjects"),
    "CropBox": ("viscover.imaging", "CropBox"),
    "parse_crop": ("viscover.imaging", "parse_crop"),
    "is_url": ("viscover.imaging", "is_url"),
    "THUMBNAIL_SIZES": ("viscover.imaging.thumbnails", "SIZES"),
    "Advance": ("viscover.progress", "Advance"),
    "ProgressFactory": ("viscover.progress", "ProgressFactory"),
    "describe_models": ("viscover.embed.registry", "describe_models"),
    "TrainConfig": ("viscover.train.config", "TrainConfig"),
    "train_model": ("viscover.train.loop", "train"),
    "evaluate_retrieval": ("viscover.eval.retrieval", "evaluate_manifest"),
    "evaluate_related": ("viscover.eval.related_eval", "evaluate_related"),
    "PruneParams": ("viscover.graph.prune", "PruneParams"),
    "GraphTrainConfig": ("viscover.graphembed", "GraphTrainConfig"),
    "grocery_rows": ("viscover.datasets", "grocery_rows"),
    "clothing_rows": ("viscover.datasets", "clothing_rows"),
    "write_manifest": ("viscover.datasets", "write_manifest"),
}

__all__ = ["Settings", "save_settings", "ViscoverError", "ConfigError", "NotFoundError", "BadImageError",
           "BadManifestError", "BadRequestError", "ModelError", "IndexCorruptError", "UnavailableError",
           "DiskFullError", "Remedy",
           "__version__", *_LAZY]

if TYPE_CHECKING:  # for type checkers and editors: the lazy names as ordinary imports
    from viscover.catalog.browse import BoardSummary  # noqa: F401
    from viscover.catalog.ingest import IngestReport  # noqa: F401
    from viscover.catalog.naming import Naming  # noqa: F401
    from viscover.catalog.records import Item  # noqa: F401
    from viscover.catalog.store import Filters  # noqa: F401
    from viscover.engine import Engine, IndexReport  # noqa: F401
    from viscover.related.service import RelatedHit  # noqa: F401
    from viscover.search.results import SearchHit  # noqa: F401
    from viscover.shop import SceneObjects  # noqa: F401


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'viscover' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(import_module(module), attr)
    globals()[name] = value  # looked up once
    return value
