"""The unified embedding model: trunk features -> LayerNorm (no affine) -> bias-free linear to d; one NormSoftmax
head per task. The embedding before L2 normalisation is what the exported model outputs: its sign bits are the
binary code, its normalised form the float code."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from viscover.train.losses import NormSoftmax


class EmbeddingHead(nn.Module):
    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim, elementwise_affine=False)
        self.proj = nn.Linear(in_dim, dim, bias=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(self.norm(features))


class UnifiedModel(nn.Module):
    def __init__(self, in_dim: int, dim: int, classes: dict[str, int], temperature: float, sampled_classes: int,
                 binary_weight: float = 0.0, quantization_weight: float = 0.0):
        super().__init__()
        self.head = EmbeddingHead(in_dim, dim)
        self.losses = nn.ModuleDict({task: NormSoftmax(n, dim, temperature, sampled_classes)
                                     for task, n in classes.items()})
        self.binary_weight = binary_weight
        self.quantization_weight = quantization_weight

    def loss(self, features: torch.Tensor, labels: dict[str, torch.Tensor],
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Sum of task losses with equal weights; each image counts only for the tasks it has a label for.

        With `binary_weight`, each task's loss is also taken on the sign bits of the embedding (straight-through:
        the forward pass sees the bits, the gradient passes as if it were the identity), so that the float
        embedding is trained to survive binarisation.
        """
        emb = self.head(features)
        bits = emb + (torch.sign(emb) - emb).detach() if self.binary_weight > 0 else None
        total = emb.new_zeros(())
        parts = {}
        for task, codes in labels.items():
            mine = codes >= 0
            if mine.any():
                value = self.losses[task](emb[mine], codes[mine], generator)
                parts[task] = float(value.detach())
                if bits is not None:
                    value = value + self.binary_weight * self.losses[task](bits[mine], codes[mine], generator)
                total = total + value
        if self.quantization_weight > 0:
            # distance of the unit vector from its own scaled sign vector: 0 when all |x_i| are equal, where
            # Hamming ranking and cosine ranking coincide
            unit = F.normalize(emb, dim=1)
            quant = (2 - 2 * unit.abs().sum(1) / emb.shape[1] ** 0.5).mean()
            parts["quantization"] = float(quant.detach())
            total = total + self.quantization_weight * quant
        return total, parts


class ExportModel(nn.Module):
    """Trunk and head as one module from uint8 pixels to the pre-normalisation embedding, for ONNX export."""

    def __init__(self, trunk: nn.Module, head: EmbeddingHead):
        super().__init__()
        self.trunk, self.head = trunk, head

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(pixels))
