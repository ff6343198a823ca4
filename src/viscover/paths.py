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
    """Every path of one catalogue's home folder (see the README's architecture section); nothing else in the
    package joins paths under a home."""

    root: Path

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'catalog.sqlite'}"

    @property
    def write_lock(self) -> Path:
        """The lock file that allows one writer per home, across processes."""
        return self.root / ".write.lock"

    @property
    def images(self) -> Path:
        """Uploaded and downloaded image files, by content hash."""
        return self.root / "images"

    @property
    def embeddings_root(self) -> Path:
        return self.root / "embeddings"

    def embeddings(self, model_key: str) -> Path:
        return self.embeddings_root / model_key

    @property
    def index_root(self) -> Path:
        return self.root / "index"

    def index(self, model_key: str) -> Path:
        return self.index_root / model_key

    @property
    def graph(self) -> Path:
        """The item-board graph built from the catalogue (CSR arrays + the catalogue signature it was built from)."""
        return self.root / "graph"

    @property
    def ranker(self) -> Path:
        """The learned ranker of related items, when one was trained and saved."""
        return self.root / "rank"

    @property
    def graph_models_root(self) -> Path:
        return self.root / "graph-models"

    def graph_model(self, model_key: str) -> Path:
        """A trained PinSage model of the item-board graph: its checkpoint (for `resume`) and report.json."""
        return self.graph_models_root / model_key

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def thumbnails(self) -> Path:
        return self.root / "cache" / "thumbs"

    @property
    def jobs(self) -> Path:
        """The server's job records, one JSON file each: every server process on the home reads the same jobs."""
        return self.root / "jobs"

    @property
    def uploads(self) -> Path:
        """Manifests and files uploaded over HTTP, kept until their ingest job has read them."""
        return self.root / "uploads"
