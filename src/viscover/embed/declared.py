"""Models viscover cannot run here, known only by the vectors imported for them (e.g. "clip-vit-b32-gpu" computed on
a GPU cluster). The first `ingest-vectors --model NAME --dim D` declares one: its name, width and key are written to
its embeddings folder's meta.json, and from then on it stands in for an embedder wherever only a description is
needed (index, search by item id, related items). It has no image encoder: embedding anything with it is one clear
error telling the user to search by item id instead."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from viscover.embed.base import InputSpec, slug
from viscover.errors import BadRequestError, ModelError, Remedy
from viscover.fsutil import atomic_write_bytes
from viscover.paths import Home

META = "meta.json"


@dataclass(frozen=True)
class DeclaredModel:
    """A model by name, width and storage key, without an encoder: what an index needs, not what embedding needs."""

    name: str
    key: str
    dim: int
    centered: bool = False  # vectors are not known to be centred: binary codes use the catalogue mean
    spec: InputSpec = field(default_factory=InputSpec)

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        raise self.no_encoder()

    def no_encoder(self) -> BadRequestError:
        """The error for asking this model to embed an image (an upload, a crop, a scene's objects)."""
        return BadRequestError(f"model {self.name} has no image encoder here: its vectors were imported; search by "
                               "item id, or use a model viscover can run")

    def meta(self) -> dict:
        """What its embeddings folder's meta.json records, so that the declaration outlives this process."""
        return {"model": self.name, "key": self.key, "dim": self.dim, "declared": True, "centered": self.centered}


def declared_key(name: str) -> str:
    """The storage key (embeddings and index folder name) of a declared model name: stable, distinct per name."""
    return f"declared-{slug(name)}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


def find_declared(home: Home, name: str) -> DeclaredModel | None:
    """The model `name` as declared in this home, None when it never was."""
    key = declared_key(name)
    path = home.embeddings(key) / META
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
        if not meta.get("declared"):
            return None
        return DeclaredModel(name=name, key=key, dim=int(meta["dim"]), centered=bool(meta.get("centered", False)))
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise ModelError(f"the declaration of model {name!r} is unreadable ({e}); import its vectors again with "
                         "its width") from None


def declare(home: Home, name: str, dim: int | None) -> DeclaredModel:
    """Declare (once) a model viscover cannot run, by the width of its vectors; later imports may omit `dim` but
    not contradict it."""
    found = find_declared(home, name)
    if found is not None:
        if dim is not None and dim != found.dim:
            raise ModelError(f"model {name!r} was declared with {found.dim} dimensions; its vectors must have "
                             f"{found.dim} values, not {dim}")
        return found
    if dim is None:
        raise ModelError(f"model {name!r} is not one viscover can run here; to import vectors computed elsewhere "
                         "with it, give their width once (it is remembered)", remedy=Remedy("declare-model",
                                                                                            model=name))
    if dim < 1:
        raise ModelError(f"model {name!r}: the width of its vectors must be at least 1, not {dim}")
    model = DeclaredModel(name=name, key=declared_key(name), dim=int(dim))
    atomic_write_bytes(home.embeddings(model.key) / META, json.dumps(model.meta(), indent=2).encode())
    return model


def model_meta(embedder) -> dict:
    """The meta.json of a model's embeddings folder: name, key and width (and the declaration of a declared one)."""
    if isinstance(embedder, DeclaredModel):
        return embedder.meta()
    return {"model": embedder.name, "key": embedder.key, "dim": embedder.dim}
