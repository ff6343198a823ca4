"""Iterative quantisation (Gong & Lazebnik, 2011): the orthogonal rotation R that best aligns embeddings with
their own sign bits, minimising ||sign(V R) - V R||. A rotation leaves every cosine similarity unchanged, so it
is folded into the embedding's last linear layer: float retrieval is exactly as before, binary codes lose less."""

from __future__ import annotations

import numpy as np


def itq_rotation(vectors: np.ndarray, iterations: int = 50, seed: int = 0) -> np.ndarray:
    """(d, d) orthogonal R for the rows of `vectors` (L2-normalised inside)."""
    v = np.asarray(vectors, np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    d = v.shape[1]
    r, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    for _ in range(iterations):
        b = np.where(v @ r >= 0, 1.0, -1.0)
        u, _, wt = np.linalg.svd(b.T @ v)
        r = (u @ wt).T
    return r


def quantization_error(vectors: np.ndarray, rotation: np.ndarray | None = None) -> float:
    """Mean squared distance between unit vectors and their scaled sign vectors (0 = bits rank like floats)."""
    v = np.asarray(vectors, np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    if rotation is not None:
        v = v @ rotation
    b = np.where(v >= 0, 1.0, -1.0) / np.sqrt(v.shape[1])
    return float(((v - b) ** 2).sum(1).mean())
