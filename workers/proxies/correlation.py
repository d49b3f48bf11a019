"""Statistics of the per-image input gradients that jacov and epe_nas both read (`ArchInputs` computes
each once per pass): torch only, over a leading dimension of architectures."""

from __future__ import annotations

import torch

# The reason stored for jacov and epe_nas where an image's input gradient holds an inf or NaN.
NOT_FINITE = "the input gradients are not finite (the network's output overflows)"


def row_spreads(jacobians: torch.Tensor) -> torch.Tensor:
    """Each image's largest minus smallest input-gradient element (`[B, N]` for `[B, N, ...]`, float64),
    from one pass over the gradients as they are: 0 for a constant row, inf or NaN for a row holding an
    inf or NaN (the extremes propagate NaN, and inf − inf is NaN)."""
    low, high = torch.aminmax(jacobians.flatten(2), dim=2)
    return high.double() - low.double()


def correlations(rows: torch.Tensor) -> torch.Tensor:
    """`np.corrcoef` of each `[N, D]` matrix of `rows` (`[B, N, D]`, float64), in its order of operations:
    the covariance of the centred rows, divided by each row's standard deviation on either side, clipped to
    [-1, 1]. A constant row gives NaN (0/0), as numpy's does."""
    centred = rows - rows.mean(dim=2, keepdim=True)
    cov = centred @ centred.transpose(1, 2) / (rows.shape[2] - 1)
    std = cov.diagonal(dim1=1, dim2=2).sqrt()
    return (cov / std[:, :, None] / std[:, None, :]).clamp(-1.0, 1.0)
