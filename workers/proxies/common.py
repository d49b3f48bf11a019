"""Small helpers shared by the measure modules (the zero-cost-nas way of running one proxy)."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from zcpipe.workers.proxies.base import Batch
from zcpipe.workers.spaces.base import weight_layers


def layers_of(net: nn.Module) -> list[nn.Module]:
    return [m for _, m in weight_layers(net)]


def loss_backward(net: nn.Module, batch: Batch) -> torch.Tensor:
    """One forward/backward of the mean cross-entropy, filling `.grad` (zero-cost-nas measures)."""
    net.train()
    net.zero_grad()
    logits = net(batch.images)
    loss = F.cross_entropy(logits, batch.labels)
    loss.backward()
    return logits


def grad_or_zeros(layer: nn.Module) -> torch.Tensor:
    g = layer.weight.grad
    return torch.zeros_like(layer.weight) if g is None else g


def input_jacobian(net: nn.Module, batch: Batch) -> torch.Tensor:
    """Gradient of the summed logits w.r.t. each input image (jacov / epe_nas)."""
    net.train()
    net.zero_grad()
    x = batch.images.clone().requires_grad_(True)
    y = net(x)
    y.backward(torch.ones_like(y))
    return x.grad.detach()


def copy_with(net: nn.Module, replacements: dict[int, object]) -> nn.Module:
    """A deep copy of `net` in which each object whose id is a key of `replacements` (a module, a
    parameter, a buffer) is that value instead: the replaced tensors are never copied first and then
    overwritten, which is most of a copy's kernels for a pass that re-draws or re-types the weights."""
    return copy.deepcopy(net, memo=dict(replacements))


def without_batchnorm(net: nn.Module) -> dict[int, object]:
    """Replacements for `copy_with` that make every BatchNorm an identity (synflow's 'BN bypassed')."""
    return {id(m): nn.Identity() for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def float64_squares(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each tensor's elements squared in float64 (as `t.double().square()`), as views of one
    concatenation: three kernels for all the tensors rather than two per tensor."""
    if not tensors:
        return []
    flat = torch.cat([t.reshape(-1) for t in tensors]).to(torch.float64).square_()
    return [part.view(t.shape) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors, strict=True)]
