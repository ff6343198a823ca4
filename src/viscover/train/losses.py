"""NormSoftmax (Zhai & Wu 2019): softmax over cosine similarities to L2-normalised class proxies, at temperature s,
with class subsampling for label spaces too large for a full softmax at every step (Zhai et al. 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NormSoftmax(nn.Module):
    """loss = -log( exp(x.p_y / s) / sum_z exp(x.p_z / s) ), x and p L2-normalised.

    With more classes than `sampled_classes`, the sum runs over the batch's own classes plus random other classes
    up to `sampled_classes` in all, drawn afresh at each call.
    """

    def __init__(self, num_classes: int, dim: int, temperature: float = 0.05, sampled_classes: int = 2048):
        super().__init__()
        if num_classes < 1:
            raise ValueError("NormSoftmax needs at least one class")
        self.proxies = nn.Parameter(torch.randn(num_classes, dim) / dim ** 0.5)
        self.temperature = temperature
        self.sampled_classes = sampled_classes

    @property
    def num_classes(self) -> int:
        return self.proxies.shape[0]

    def select_classes(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Class ids the softmax runs over: all of them, or the batch's classes plus a random sample of others."""
        n = self.num_classes
        if n <= self.sampled_classes:
            return torch.arange(n, device=labels.device)
        positives = torch.unique(labels)
        extra = max(0, self.sampled_classes - len(positives))
        is_positive = torch.zeros(n, dtype=torch.bool, device=labels.device)
        is_positive[positives] = True
        # oversample uniformly, drop positives and repeats; top up in the rare case that is not enough
        chosen = torch.empty(0, dtype=torch.long, device=labels.device)
        while len(chosen) < extra:
            draw = torch.randint(n, (2 * extra + 16,), generator=generator, device=labels.device)
            draw = draw[~is_positive[draw]]
            chosen = torch.unique(torch.cat([chosen, draw]))
            if len(chosen) > extra:
                chosen = chosen[torch.randperm(len(chosen), generator=generator, device=labels.device)[:extra]]
        return torch.cat([positives, chosen])

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
            raise ValueError(f"expected embeddings (N, d) and labels (N,), got {tuple(embeddings.shape)} and "
                             f"{tuple(labels.shape)}")
        classes = self.select_classes(labels, generator)
        position = torch.full((self.num_classes,), -1, dtype=torch.long, device=labels.device)
        position[classes] = torch.arange(len(classes), device=labels.device)
        logits = self.logits(embeddings, classes)
        return F.cross_entropy(logits, position[labels])

    def logits(self, embeddings: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Cosine similarities to the proxies of `classes`, divided by the temperature."""
        return F.normalize(embeddings, dim=1) @ F.normalize(self.proxies[classes], dim=1).T / self.temperature
