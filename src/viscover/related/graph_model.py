"""PinSage graph embeddings of a catalogue (`train-graph`): trained on the home's item-board graph with the base
model's stored image vectors as content, checkpointed under the home (so that a run can be resumed), and handed back
as one vector per catalogue item for the Engine to store as a model of their own (with an index, like any model)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from viscover.catalog.store import CatalogStore
from viscover.embed.vectors import EmbeddingStore
from viscover.errors import BadRequestError, NotFoundError, Remedy
from viscover.fsutil import atomic_write_bytes
from viscover.graph.bipartite import Bipartite
from viscover.graphembed import GraphTrainConfig, train_graph
from viscover.paths import Home

REPORT = "report.json"


@dataclass
class GraphEmbeddings:
    """One PinSage embedding per graph item (rows of `vectors` follow `item_ids`, catalogue row ids) and the report."""

    item_ids: np.ndarray
    vectors: np.ndarray  # (n, dim) float32 unit rows
    report: dict


def content_vectors(store: CatalogStore, home: Home, base_key: str, base_name: str,
                    graph: Bipartite) -> tuple[np.ndarray, int]:
    """The base model's stored vector of each graph item's image (row = graph node), zeros for items without one,
    and how many have none; NotFoundError when no item has one (the catalogue is not indexed with that model)."""
    item_ids, image_ids = store.item_images()
    images = image_ids[np.searchsorted(item_ids, graph.left_ids)] if len(item_ids) else np.zeros(0, np.int64)
    vectors = EmbeddingStore(home.embeddings(base_key))
    found = vectors.has(images) if len(images) else np.zeros(0, bool)
    if not found.any():
        raise NotFoundError(f"no item has a stored {base_name} vector to train graph embeddings from: the "
                            "catalogue must be indexed with that model first", remedy=Remedy("index", model=base_name))
    content = np.zeros((graph.n_left, vectors.dim), np.float32)
    content[found] = vectors.vectors_of(images[found])
    return content, int((~found).sum())


def train_catalogue_graph(store: CatalogStore, home: Home, graph: Bipartite, *, base_key: str, base_name: str,
                          name: str, folder: Path, config: GraphTrainConfig, resume: bool = False,
                          log: Callable[[str], None] = lambda _: None) -> GraphEmbeddings:
    """Train (or, with `resume`, continue training) PinSage on the catalogue's item-board graph; the checkpoint and
    report.json are kept in `folder`. The caller holds the home's write lock."""
    if graph.n_right == 0 or graph.n_edges == 0:
        raise BadRequestError("the catalogue has no boards: graph embeddings learn from board memberships",
                              remedy=Remedy("ingest-boards"))
    content, missing = content_vectors(store, home, base_key, base_name, graph)
    if missing:
        log(f"{missing} of {graph.n_left} items have no {base_name} vector: trained with a zero content row")
    t0 = time.perf_counter()
    result = train_graph(graph, content, config, out=folder, resume=resume, log=log)
    history = result.report.get("history", [])
    done_before = int(result.report.get("resumed_after_epoch", 0))
    report = {"model": name, "base_model": base_name, "items": int(graph.n_left), "boards": int(graph.n_right),
              "edges": int(graph.n_edges), "items_without_content": missing, "epochs": int(config.epochs),
              "resumed_after_epoch": done_before, "epochs_trained": len(history) - done_before,
              "dim": int(config.dim), "seconds": round(time.perf_counter() - t0, 3), "history": history,
              "training": {k: v for k, v in result.report.items() if k != "history"}}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / REPORT, json.dumps(report, indent=2, default=float).encode())
    return GraphEmbeddings(graph.left_ids.astype(np.int64), np.asarray(result.embeddings, np.float32), report)

