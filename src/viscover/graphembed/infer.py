"""Embedding every item (layer by layer over all nodes, each layer's outputs reused by the next) and new items.

The paper's producer-consumer inference avoids recomputing shared neighbours: here each layer is computed once
for every node, in batches, and the next layer reads those vectors. A new item (not in the graph) gets its
embedding from its content vector and a neighbourhood of visually similar items, without retraining.
"""

from __future__ import annotations

import numpy as np
import torch

from viscover.graphembed.model import PinSage, unit_content
from viscover.graphembed.neighbourhoods import Neighbourhoods


def fill_cold(nbrs: Neighbourhoods, content: np.ndarray, centre: bool = True, chunk: int = 1024) -> Neighbourhoods:
    """A copy whose empty neighbourhoods (items without boards) hold their visual nearest neighbours among the
    items that have one (cosine of the content vectors, weights = positive similarities normalised to sum 1):
    each such item is then embedded as `embed_new` would embed it, instead of from its content alone."""
    index, weight = nbrs.index.copy(), nbrs.weight.copy()
    cold = np.nonzero(index[:, 0] < 0)[0]
    warm = np.nonzero(index[:, 0] >= 0)[0]
    if len(cold) == 0 or len(warm) == 0:
        return Neighbourhoods(index, weight)
    unit = unit_content(content, centre)
    t = min(nbrs.size, len(warm))
    for s in range(0, len(cold), chunk):
        rows = cold[s:s + chunk]
        sims = unit[rows] @ unit[warm].T
        top = np.argpartition(-sims, t - 1, axis=1)[:, :t]
        sim = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0)
        order = np.argsort(-sim, axis=1, kind="stable")
        top, sim = np.take_along_axis(top, order, axis=1), np.take_along_axis(sim, order, axis=1)
        total = sim.sum(axis=1, keepdims=True)
        index[rows, :t] = warm[top]
        weight[rows, :t] = np.where(total > 0, sim / np.maximum(total, 1e-12), 1.0 / t)
    return Neighbourhoods(index, weight)


@torch.no_grad()
def layer_outputs(model: PinSage, nbrs: Neighbourhoods, features: np.ndarray, batch: int = 4096) -> list[torch.Tensor]:
    """[h_0, h_1, ..., h_K]: the input features and every convolution's output for all nodes."""
    n = len(features)
    hs = [torch.as_tensor(np.asarray(features, np.float32))]
    for conv in model.convs:
        prev, out = hs[-1], []
        for start in range(0, n, batch):
            index = nbrs.index[start:start + batch]
            pos = torch.from_numpy(np.where(index >= 0, index, 0).astype(np.int64))
            out.append(conv(prev[start:start + batch], prev[pos], torch.from_numpy(nbrs.weight[start:start + batch])))
        hs.append(torch.cat(out) if out else prev[:0])
    return hs


@torch.no_grad()
def embed_items(model: PinSage, nbrs: Neighbourhoods, features: np.ndarray, batch: int = 4096) -> np.ndarray:
    """(n, dim) float32 unit embeddings of every item node."""
    model.eval()
    hs = layer_outputs(model, nbrs, features, batch)
    z, h0 = hs[-1], hs[0]
    return torch.cat([model.head(z[s:s + batch], h0[s:s + batch])
                      for s in range(0, len(z), batch)]).numpy().astype(np.float32)


@torch.no_grad()
def embed_new(model: PinSage, features_row: np.ndarray, nbr_nodes: np.ndarray, nbr_weights: np.ndarray,
              layers: list[torch.Tensor]) -> np.ndarray:
    """(dim,) unit embedding of an item outside the graph: its feature row (content vector and log(1 + degree),
    see `node_features`) and its neighbourhood (graph node indices, e.g. its visual nearest neighbours, with
    similarity weights, normalised here to sum 1), given `layers` = layer_outputs(...) of the graph's items."""
    model.eval()
    nodes = torch.as_tensor(np.asarray(nbr_nodes, np.int64))
    w = np.asarray(nbr_weights, np.float32)
    w = torch.from_numpy(w / max(float(w.sum()), 1e-12))[None]
    h0 = h = torch.as_tensor(np.asarray(features_row, np.float32))[None]
    for k, conv in enumerate(model.convs):  # the new item's layer k from its own layer k-1 and its neighbours'
        h = conv(h, layers[k][nodes][None], w)
    return model.head(h, h0)[0].numpy().astype(np.float32)
