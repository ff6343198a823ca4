"""PinSage in PyTorch: importance-pooled graph convolutions over walk neighbourhoods, then a dense layer to unit
vectors.

Layer k, for node u with neighbours v (weights w_uv from the walks):
    n_u = sum_v w_uv ReLU(Q h_v + q)            (importance pooling)
    z_u = normalise(ReLU(W [h_u ; n_u] + w))
and after the last layer e_u = normalise(G z_u + g), plus S h_u^0 with the skip path on. A batch needs only its
nodes' K-hop computation graph: the nodes of layer k are those of layer k + 1 plus their neighbours, so memory
grows with the batch, not the graph.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from viscover.graph.bipartite import Bipartite
from viscover.graphembed.neighbourhoods import Neighbourhoods


def unit_content(content: np.ndarray, centre: bool = True) -> np.ndarray:
    """Content vectors as similarity uses them: minus their mean (CNN features all share one positive direction
    that would otherwise dominate every cosine), then L2-normalised."""
    content = np.asarray(content, np.float32)
    if centre:
        content = content - content.mean(axis=0, keepdims=True)
    return content / np.maximum(np.linalg.norm(content, axis=1, keepdims=True), 1e-12)


def node_features(graph: Bipartite, content: np.ndarray, centre: bool = True) -> np.ndarray:
    """(n, f + 1) float32: each item's unit content vector (see `unit_content`) and log(1 + degree)."""
    unit = unit_content(content, centre)
    degree = np.log1p(graph.left_degree().astype(np.float32))[:, None]
    return np.concatenate([unit, degree], axis=1).astype(np.float32)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


class Convolve(nn.Module):
    """One PinSage convolution: pool the neighbours' transformed vectors by importance, combine with the node's."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.Q = nn.Linear(d_in, d_out)
        self.W = nn.Linear(d_in + d_out, d_out)

    def forward(self, h_self: torch.Tensor, h_nbrs: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """h_self (m, d_in), h_nbrs (m, T, d_in), weight (m, T) -> (m, d_out) unit rows."""
        pooled = (weight.unsqueeze(-1) * torch.relu(self.Q(h_nbrs))).sum(dim=1)
        return _normalise(torch.relu(self.W(torch.cat([h_self, pooled], dim=-1))))


class PinSage(nn.Module):
    """K convolutions (default 2) and a final dense layer to `dim`, output L2-normalised."""

    def __init__(self, d_in: int, hidden: int = 256, dim: int = 128, layers: int = 2, skip: bool = False):
        super().__init__()
        self.convs = nn.ModuleList([Convolve(d_in if k == 0 else hidden, hidden) for k in range(layers)])
        self.out = nn.Linear(hidden, dim)
        # the content path kept strong: e_u = normalise(G z_u + g + S h_u^0), the node's own input features
        # projected straight to the output beside the convolutions' vector
        self.skip = nn.Linear(d_in, dim, bias=False) if skip else None

    def head(self, z: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer's vectors (and, with the skip path, the same nodes' input features) -> unit embeddings."""
        e = self.out(z)
        if self.skip is not None:
            e = e + self.skip(h0)
        return _normalise(e)

    def forward(self, nodes: np.ndarray, nbrs: Neighbourhoods, features: torch.Tensor) -> torch.Tensor:
        """Embeddings (len(nodes), dim) of item nodes, computed on their K-hop computation graph only."""
        # node sets, outermost first: sets[K] = the batch, sets[k-1] = sets[k] plus the neighbours of sets[k]
        sets = [np.unique(np.asarray(nodes, np.int64))]
        for _ in self.convs:
            inner = nbrs.index[sets[0]]
            sets.insert(0, np.unique(np.concatenate([sets[0], inner[inner >= 0].astype(np.int64)])))
        h = features[torch.from_numpy(sets[0])]
        for k, conv in enumerate(self.convs):
            h = conv_step(conv, h, sets[k], sets[k + 1], nbrs)
        h0 = features[torch.from_numpy(sets[-1])] if self.skip is not None else None
        return self.head(h, h0)[torch.from_numpy(np.searchsorted(sets[-1], np.asarray(nodes, np.int64)))]


def conv_step(conv: Convolve, h: torch.Tensor, known: np.ndarray, wanted: np.ndarray,
              nbrs: Neighbourhoods) -> torch.Tensor:
    """One convolution for the `wanted` nodes, given vectors h of the sorted `known` nodes (which hold the wanted
    nodes and all their neighbours). Padding (-1) neighbours read row 0 with weight 0."""
    index = nbrs.index[wanted]
    pos = np.searchsorted(known, np.where(index >= 0, index, known[0]))
    h_self = h[torch.from_numpy(np.searchsorted(known, wanted))]
    h_nbrs = h[torch.from_numpy(pos.reshape(-1))].reshape(len(wanted), index.shape[1], -1)
    return conv(h_self, h_nbrs, torch.from_numpy(nbrs.weight[wanted]))
