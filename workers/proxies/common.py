"""Small helpers shared by the measure modules (the zero-cost-nas way of running one proxy)."""

from __future__ import annotations

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


def strip_batchnorm(net: nn.Module) -> nn.Module:
    """Replace every BatchNorm with identity in place (synflow's 'BN bypassed')."""
    for name, child in net.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            strip_batchnorm(child)
    return net
