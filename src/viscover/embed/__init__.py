"""Embedding: a registry of image models, batch embedding in worker processes, and stored vectors per model."""

from viscover.embed.base import Embedder, InputSpec
from viscover.embed.registry import describe_models, load_embedder, resolve_model

__all__ = ["Embedder", "InputSpec", "load_embedder", "resolve_model", "describe_models"]
