"""Max-margin loss (PinSage): a positive pair's query must be closer to its positive than to every negative by a
margin; negatives = the other pairs' positives of the batch (shared) plus the query's hard negatives."""

from __future__ import annotations

import torch


def max_margin_loss(query: torch.Tensor, positive: torch.Tensor, hard: torch.Tensor | None = None,
                    hard_mask: torch.Tensor | None = None, margin: float = 0.1) -> torch.Tensor:
    """Mean over pairs of the mean over the pair's negatives of max(0, q.neg - q.pos + margin).

    query, positive (B, d); hard (B, H, d) with hard_mask (B, H) saying which hard negatives exist."""
    b = query.shape[0]
    pos = (query * positive).sum(-1, keepdim=True)  # (B, 1)
    shared = torch.relu(query @ positive.T - pos + margin)  # (B, B): column j = pair j's positive
    others = ~torch.eye(b, dtype=torch.bool, device=query.device)
    total = (shared * others).sum(-1)
    count = torch.full((b,), float(b - 1), device=query.device)
    if hard is not None and hard.shape[1] > 0:
        mask = torch.ones(hard.shape[:2], dtype=torch.bool) if hard_mask is None else hard_mask
        h = torch.relu(torch.einsum("bd,bhd->bh", query, hard) - pos + margin)
        total = total + (h * mask).sum(-1)
        count = count + mask.sum(-1)
    return (total / count.clamp_min(1.0)).mean()
