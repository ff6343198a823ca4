"""Hugging Face `transformers` image models (CLIP, ViT and kin) by hub name or local folder, run with PyTorch.

CLIP models give their projected `image_embeds`; other vision models their pooled output, else the first token.
Preprocessing (size, crop, mean, std) is read from the model's image-processor config. Loading from the hub
needs network access; a local folder (`save_pretrained`) works offline.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from viscover.embed.base import InputSpec, slug
from viscover.errors import ModelError


class HFEmbedder:
    """An Embedder running a transformers vision model with PyTorch (see the module docstring for which output)."""

    def __init__(self, name_or_path: str, threads: int = 0):
        try:
            import torch
            import transformers
        except ImportError:
            raise ModelError("hf: models need the transformers package: pip install 'viscover[hf]'") from None
        if threads > 0:
            torch.set_num_threads(threads)
        self._torch = torch
        try:
            config = transformers.AutoConfig.from_pretrained(name_or_path)
            if config.model_type == "clip":
                # A full CLIPModel keeps the projection width at the top level; the vision sub-config's own
                # projection_dim is often absent (default 512), which would mis-size visual_projection.
                vision = config.vision_config
                vision.projection_dim = config.projection_dim
                self.model = transformers.CLIPVisionModelWithProjection.from_pretrained(name_or_path, config=vision)
                self._mode = "clip"
            elif config.model_type == "clip_vision_model":
                self.model = transformers.CLIPVisionModelWithProjection.from_pretrained(name_or_path)
                self._mode = "clip"
            else:
                self.model = transformers.AutoModel.from_pretrained(name_or_path)
                self._mode = "pooled"
        except ModelError:
            raise
        except Exception as e:
            raise ModelError(f"hf:{name_or_path}: cannot load the model ({type(e).__name__}: {e}); give a hub name "
                             "(needs network) or a folder written by save_pretrained") from None
        self.model.eval()
        self.centered = False
        self.spec = _spec_from_processor(name_or_path, config)
        self.name = f"hf:{name_or_path}"
        self.key = f"hf-{slug(name_or_path)}-{_digest(name_or_path)}"
        self.dim = int(self.embed(np.zeros((1, self.spec.size, self.spec.size, 3), np.uint8)).shape[1])

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """(N, size, size, 3) uint8 pixels -> (N, dim) float32 (see viscover.embed.base.Embedder)."""
        x = self._torch.from_numpy(self.spec.to_tensor(pixels))
        with self._torch.inference_mode():
            out = self.model(pixel_values=x)
            if self._mode == "clip":
                vec = out.image_embeds
            elif getattr(out, "pooler_output", None) is not None:
                vec = out.pooler_output
            else:
                vec = out.last_hidden_state[:, 0]
        vec = vec.reshape(vec.shape[0], -1)
        return vec.float().numpy()


def _spec_from_processor(name_or_path: str, config) -> InputSpec:
    """Size and normalisation from the image-processor config; the model config's image_size as a fallback."""
    vision = getattr(config, "vision_config", config)
    size = int(getattr(vision, "image_size", 224) or 224)
    resize, mean, std = size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    try:
        from transformers import AutoImageProcessor

        proc = AutoImageProcessor.from_pretrained(name_or_path, use_fast=False)
        crop = getattr(proc, "crop_size", None) or {}
        short = getattr(proc, "size", None) or {}
        size = int(crop.get("height") or short.get("height") or short.get("shortest_edge") or size)
        resize = int(short.get("shortest_edge") or short.get("height") or size)
        mean = tuple(getattr(proc, "image_mean", mean))
        std = tuple(getattr(proc, "image_std", std))
    except Exception:
        pass  # no processor config: the defaults above
    return InputSpec(size=size, resize=max(resize, size), layout="NCHW", dtype="float32",
                     mean=tuple(255.0 * m for m in mean), std=tuple(255.0 * s for s in std))


def _digest(name_or_path: str) -> str:
    """Local folders: a hash of config and weight files, so a retrained model gets new embeddings."""
    folder = Path(name_or_path)
    h = hashlib.sha256(name_or_path.encode())
    if folder.is_dir():
        for f in sorted(folder.iterdir()):
            if f.suffix in (".json", ".safetensors", ".bin"):
                h.update(f.name.encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:10]
