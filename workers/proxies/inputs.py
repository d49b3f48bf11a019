"""What the passes take and give: the minibatch, and the kinds of quantity a proxy may need from the
shared pass (a leaf module: the passes and the proxies' base both import it, neither the other)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

# What a data proxy needs from the shared pass.
Need = Literal["grads", "acts", "hvp", "input_grad", "relu_codes"]


@dataclass(frozen=True)
class Batch:
    """One minibatch on the engine's device; `sha256` identifies it in the configuration hash."""

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    sha256: str
