"""zen: log E‖f(x) − f(x + γε)‖₁ + Σ log √mean(BN running var), f the features before global
pooling, with Gaussian-initialised weights (Lin et al. 2021; NAS-Bench-Suite-Zero `zen`).

Its own copy by definition: the weights are re-drawn. BN running statistics start from
their defaults so that the value does not depend on what ran before.
"""

import math

import torch
import torch.nn as nn

from zcpipe.workers.proxies.base import Proxy, ProxyUndefined
from zcpipe.workers.proxies.common import copy_with
from zcpipe.workers.proxies.registry import PROXIES

MIXUP_GAMMA = 1e-2


def gaussian_weights(net: nn.Module, gen: torch.Generator) -> list[torch.Tensor]:
    """zen's re-drawn weights of every Conv2d/Linear in module order, drawn on the CPU: a CUDA
    generator gives another sample for the same seed, and the value must not depend on the device.
    The batched path draws through this too, so both draw the same numbers in the same order."""
    return [
        torch.randn(m.weight.shape, generator=gen, dtype=m.weight.dtype)
        for m in net.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]


def zen_inputs(x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The Gaussian input and the Gaussian perturbation, drawn after the weights."""
    a = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
    b = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
    return a, b


def _gaussian_copy(net: nn.Module, gen: torch.Generator) -> nn.Module:
    """A copy of `net` with zen's initialisation: Gaussian weights (drawn in `gaussian_weights`' order),
    zero biases, BatchNorm and GroupNorm affine at (1, 0), BatchNorm running statistics at their defaults.
    The new tensors are handed to the copy directly, not copied in and then overwritten."""
    drawn = iter(gaussian_weights(net, gen))
    fresh: dict[int, object] = {}

    def param(old: torch.Tensor, value: torch.Tensor) -> None:
        fresh[id(old)] = nn.Parameter(value, requires_grad=old.requires_grad)

    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            param(m.weight, next(drawn).to(m.weight.device))
            if m.bias is not None:
                param(m.bias, torch.zeros_like(m.bias))
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            param(m.weight, torch.ones_like(m.weight))
            param(m.bias, torch.zeros_like(m.bias))
        if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None:
            fresh[id(m.running_mean)] = torch.zeros_like(m.running_mean)
            fresh[id(m.running_var)] = torch.ones_like(m.running_var)
            fresh[id(m.num_batches_tracked)] = torch.zeros_like(m.num_batches_tracked)
    return copy_with(net, fresh)


# Version 2: `--micro-batch` splits its passes too (BatchNorm sees each micro-batch alone), as it does the
# data pass; version 1 ran the whole batch whatever the configuration said.
@PROXIES.register("zen", scope="arch", pass_name="zen", version="2")
class Zen(Proxy):
    splits_batch = True

    def standalone(self, net, batch, ctx):
        x = batch.images
        # One seeded CPU generator for the re-drawn weights and the inputs: the value depends only
        # on (run seed, arch), not on which proxies ran before on this worker, nor on the device.
        gen = torch.Generator(device="cpu").manual_seed(ctx.generator_seed)
        net = _gaussian_copy(net, gen)
        net.train()
        with torch.no_grad():
            a, b = zen_inputs(x, gen)
            # Out of memory splits the batch (the engine sets ctx.micro_batch); BatchNorm then sees
            # each micro-batch alone, as in the data pass.
            n = x.shape[0]
            step = ctx.micro_batch or n
            if step >= n:  # the reference's expression, bit for bit
                nas_score = _feature_distance(net, a, b).mean()
            else:
                parts = [_feature_distance(net, a[s : s + step], b[s : s + step]).sum() for s in range(0, n, step)]
                nas_score = torch.stack(parts).sum() / n
            log_bn = sum(
                torch.log(torch.sqrt(torch.mean(m.running_var))) for m in net.modules() if isinstance(m, nn.BatchNorm2d)
            )
            return zen_value(float(torch.log(nas_score.double()) + log_bn))


def zen_value(value: float) -> float:
    """The value, or ProxyUndefined with zen's reason where it is not finite."""
    if not math.isfinite(value):
        raise ProxyUndefined("zen is not finite: the features do not respond to the input perturbation")
    return value


def _feature_distance(net: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image, ‖f(a) − f(a + γb)‖₁ over the features before global pooling."""
    diff = (net.features(a) - net.features(a + MIXUP_GAMMA * b)).abs()
    return diff.sum(dim=tuple(range(1, diff.dim())))
