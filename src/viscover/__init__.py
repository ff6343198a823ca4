"""viscover: an open-source visual discovery engine (visual search, related items, shop the look)."""

from viscover.config import Settings
from viscover.errors import (BadImageError, BadManifestError, BadRequestError, ConfigError, IndexCorruptError,
                             ModelError, NotFoundError, Remedy, UnavailableError, ViscoverError)

__version__ = "0.1.0"

__all__ = ["Settings", "ViscoverError", "ConfigError", "NotFoundError", "BadImageError", "BadManifestError",
           "BadRequestError", "ModelError", "IndexCorruptError", "UnavailableError", "Remedy", "Engine", "__version__"]


def __getattr__(name: str):  # lazy: `import viscover` stays cheap for the CLI's --help
    if name == "Engine":
        from viscover.engine import Engine
        return Engine
    raise AttributeError(name)
