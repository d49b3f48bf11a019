"""Ranking losses."""

from __future__ import annotations

import torch


def diff_kendall(pred: torch.Tensor, target: torch.Tensor, alpha: float) -> torch.Tensor:
    """Differentiable Kendall τ (ParZC, after DiffKendall): the mean over pairs i<j of
    tanh(α·Δpred/2)·tanh(α·Δtarget/2). As α grows, tanh(αΔ/2) -> sign(Δ), so it tends to
    Kendall's τ (τ-a; equal to τ-b without ties). The training loss is its negative."""
    n = pred.shape[0]
    i, j = torch.triu_indices(n, n, offset=1, device=pred.device)
    dp = pred[i] - pred[j]
    dt = target[i] - target[j]
    return (torch.tanh(alpha * dp / 2) * torch.tanh(alpha * dt / 2)).mean()
