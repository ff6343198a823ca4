"""What every embedding model offers: an input convention and a batch function from pixels to vectors."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from PIL import Image

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # in 0-255 pixel units
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class InputSpec:
    """How images are shaped for a model.

    The image's shorter side is scaled to `resize`, the central `size` x `size` square is cut out and fed as
    RGB; `resize == size` keeps the whole central square. Float inputs are normalised as (pixel - mean) / std
    with pixel values in 0-255; uint8 inputs are passed as raw pixels (the graph normalises itself).
    """

    size: int = 224
    resize: int = 224
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    dtype: Literal["float32", "uint8"] = "float32"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "InputSpec":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for k in ("mean", "std"):
            if k in known:
                known[k] = tuple(float(x) for x in known[k])
        return cls(**known)

    def to_tensor(self, pixels: np.ndarray) -> np.ndarray:
        """(N, size, size, 3) uint8 -> the model's input array."""
        if self.dtype == "uint8":
            x = pixels
        else:
            x = (pixels.astype(np.float32) - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x)


def to_pixels(img: Image.Image, spec: InputSpec) -> np.ndarray:
    """Scale-and-centre-crop an RGB image to (size, size, 3) uint8 in one resize of just the needed region.

    Resizing only the source box avoids huge intermediates for extreme aspect ratios and costs less.
    """
    w, h = img.size
    side = min(w, h) * spec.size / spec.resize  # source pixels that map onto the output square
    side_w, side_h = min(side, w), min(side, h)
    left, top = (w - side_w) / 2, (h - side_h) / 2
    # Box (area) filtering when shrinking: properly anti-aliased and 1.5x cheaper than bilinear in Pillow, which
    # matters because decoding must keep up with inference. Bilinear when enlarging (box would be blocky).
    shrinking = min(side_w, side_h) >= spec.size
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    out = img.resize((spec.size, spec.size), resample, box=(left, top, left + side_w, top + side_h))
    return np.asarray(out, dtype=np.uint8)


def slug(text: str, length: int = 48) -> str:
    """A file-name-safe fragment of a model name or path for storage keys (the end: paths differ at the end)."""
    out = "".join(c if c.isalnum() or c in "-_." else "-" for c in text.lower()).strip("-.")
    return out[-length:].strip("-.") or "model"


@runtime_checkable
class Embedder(Protocol):
    """An image model: `embed` maps (N, size, size, 3) uint8 pixels to (N, dim) float32 raw embeddings.

    Implementations: `OnnxEmbedder` (built-in backbones, `onnx:PATH`, viscover model folders) and `HFEmbedder`
    (`hf:`); tests/contracts/test_embedders.py is the contract each must pass (shape and dtype, determinism, batch
    invariance, a key stable across loads and distinct between models)."""

    name: str  # what to load it by again: the canonical model name (viscover.embed.resolve_model), e.g. in workers
    key: str  # stable folder name for its stored embeddings and indexes; another model (other outputs), another key
    dim: int  # width of each embedding
    spec: InputSpec  # how images are cropped, scaled and laid out for it (viscover.embed.base.to_pixels)
    centered: bool  # True when outputs are already centred (e.g. LayerNorm): binarise at 0, no catalogue mean

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """(N, spec.size, spec.size, 3) uint8 RGB pixels -> (N, dim) float32; row i depends on image i only."""
        ...
