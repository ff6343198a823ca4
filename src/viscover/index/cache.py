"""Saved indexes kept in memory, one per model: loaded once, reloaded when another process saved a newer one, and
replaced by the copies this process saves (indexes are never changed in place while cached)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Hashable

from viscover.config import Settings
from viscover.errors import IndexCorruptError, NotFoundError, Remedy
from viscover.index.base import VectorIndex
from viscover.index.registry import load_index, saved_version
from viscover.paths import Home


class IndexCache:
    """The saved index of each model key of a home, as last loaded or saved here, with the version it was saved
    under (a newer save by another process is noticed by its version and loaded on the next `get`)."""

    def __init__(self, home: Home, settings: Settings, lock: threading.RLock | None = None):
        self.home, self.settings = home, settings
        self._lock = lock or threading.RLock()
        self._kept: dict[str, tuple[Hashable | None, VectorIndex]] = {}
        self._folders: dict[str, Path] = {}  # model key -> its index folder, built once (pathlib joins are slow)

    def _folder(self, key: str) -> Path:
        folder = self._folders.get(key)
        if folder is None:
            folder = self._folders[key] = self.home.index(key)
        return folder

    def is_current(self, key: str) -> bool:
        """True when the index of model key `key` is loaded and no newer save has landed: `get` will not load."""
        with self._lock:
            kept = self._kept.get(key)
            return kept is not None and kept[0] == saved_version(self._folder(key), self.settings)

    def get(self, key: str, name: str, model: str | None = None) -> VectorIndex:
        """The index of model key `key` (model `name`, as the user spelled it: `model`). NotFoundError when none
        was saved, IndexCorruptError when its files fail verification; both name the remedy."""
        folder = self._folder(key)
        with self._lock:
            version = saved_version(folder, self.settings)
            kept = self._kept.get(key)
            if kept is not None and kept[0] == version:
                return kept[1]
            try:
                index = load_index(folder, self.settings)
            except IndexCorruptError as e:
                raise IndexCorruptError(str(e), remedy=Remedy("rebuild-index", model=model)) from None
            if index is None:
                self._kept.pop(key, None)
                raise NotFoundError(f"no index for model {name} yet", remedy=Remedy("index", model=model))
            # the version read before loading: a save landing meanwhile makes the next `get` load again
            self._kept[key] = (version, index)
            return index

    def keep(self, key: str, index: VectorIndex) -> None:
        """Cache an index this process has just saved under model key `key` (swapping out the previous copy)."""
        with self._lock:
            self._kept[key] = (saved_version(self._folder(key), self.settings), index)
