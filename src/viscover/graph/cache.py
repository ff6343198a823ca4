"""The item-board graph of a catalogue, kept in memory and on disk for as long as the catalogue's boards stay the same.

Building the graph reads every board membership from the catalogue; the catalogue's signature (counts and id sums of
its items and memberships, `CatalogStore.graph_signature`) says whether a graph built earlier still holds, in this
process or, saved with it, in an earlier one. The graph and its signature are two files: processes on one home (the
workers of one server, a shell beside it) load, build and save them one at a time (a lock file beside them), or one
could pair its graph with another's signature.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from viscover.catalog.store import CatalogStore
from viscover.fsutil import HomeLock, atomic_write_bytes
from viscover.graph.bipartite import Bipartite
from viscover.graph.build import item_board_graph

GRAPH_FILE = "item-board.npz"
META_FILE = "item-board.json"  # the signature the graph was built from, and its sizes
LOCK_FILE = ".build.lock"


class GraphCache:
    """The catalogue's item-board graph: the one in memory while the catalogue signature is unchanged, else the one
    saved in `folder` (the home's graph folder) if it was built from the current catalogue, else rebuilt and saved.
    Thread-safe: one build at a time (a background rebuild and a request needing the new graph share it)."""

    def __init__(self, store: CatalogStore, folder: Path):
        self.store, self.folder = store, Path(folder)
        self._kept: tuple[list[int], Bipartite] | None = None  # (catalogue signature, graph)
        self._build_lock = threading.Lock()
        self._files_lock = HomeLock(self.folder / LOCK_FILE)

    def get(self, signature: list[int] | None = None) -> Bipartite:
        """The graph of the catalogue as it is now (or as it was at `signature`, read by the caller beforehand)."""
        signature = self.store.graph_signature() if signature is None else signature
        kept = self._kept
        if kept is not None and kept[0] == signature:
            return kept[1]
        with self._build_lock, self._files_lock.held():  # another process building waits: then it is loaded
            kept = self._kept
            if kept is not None and kept[0] == signature:  # built by another thread meanwhile
                return kept[1]
            graph = self._load(signature)
            if graph is None:
                graph, _ = item_board_graph(self.store)
                graph.save(self.folder / GRAPH_FILE)
                atomic_write_bytes(self.folder / META_FILE,
                                   json.dumps({"signature": signature, "items": graph.n_left, "boards": graph.n_right,
                                               "edges": graph.n_edges}).encode())
            self._kept = (signature, graph)
            return graph

    def _load(self, signature: list[int]) -> Bipartite | None:
        """The saved graph if it was built from a catalogue with this signature (None when absent, stale or damaged:
        the caller rebuilds it)."""
        path, meta = self.folder / GRAPH_FILE, self.folder / META_FILE
        if not (path.is_file() and meta.is_file()):
            return None
        try:
            if json.loads(meta.read_text()).get("signature") == signature:
                return Bipartite.load(path)
        except (OSError, ValueError):
            pass  # damaged: rebuilt from the catalogue
        return None
