"""Where things live: the per-catalogue home folder and the per-user cache."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def cache_dir() -> Path:
    """Per-user cache (exported models): $VISCOVER_CACHE, else the platform's user cache folder."""
    env = os.environ.get("VISCOVER_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("viscover"))


@dataclass(frozen=True)
class Home:
    """The layout of one catalogue's home folder (see the README's architecture section)."""

    root: Path

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'catalog.sqlite'}"

    @property
    def images(self) -> Path:
        return self.root / "images"

    def embeddings(self, model_key: str) -> Path:
        return self.root / "embeddings" / model_key

    def index(self, model_key: str) -> Path:
        return self.root / "index" / model_key

    @property
    def models(self) -> Path:
        return self.root / "models"
