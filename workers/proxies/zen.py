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


def gaussian_weights(net: nn.Module, gen: torch.Generator, layers: list[nn.Module] | None = None) -> list[torch.Tensor]:
    """zen's re-drawn weights of every Conv2d/Linear in module order (`layers` where the caller has
    walked the network for them already), drawn on the CPU: a CUDA generator gives another sample for
    the same seed, and the value must not depend on the device. The batched path draws through this
    too, so both draw the same numbers in the same order."""
    if layers is None:
        layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return [torch.randn(m.weight.shape, generator=gen, dtype=m.weight.dtype) for m in layers]


def zen_inputs(x: torch.Tensor, gen: torch.Generator, on_host: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The Gaussian input and the Gaussian perturbation, drawn after the weights, on `x`'s device (on
    the CPU where they were drawn with `on_host`: the batched path moves all architectures' at once)."""
    a = torch.randn(x.shape, generator=gen, dtype=x.dtype)
    b = torch.randn(x.shape, generator=gen, dtype=x.dtype)
    return (a, b) if on_host else (a.to(x.device), b.to(x.device))


def _gaussian_copy(net: nn.Module, gen: torch.Generator) -> nn.Module:
    """A copy of `net` with zen's initialisation: Gaussian weights (drawn in `gaussian_weights`' order),
    zero biases, BatchNorm and GroupNorm affine at (1, 0), BatchNorm running statistics at their defaults.
    The new tensors are handed to the copy directly, not copied in and then overwritten; the constant
    ones are views of one filled tensor per value, not a fill per tensor."""
    drawn = iter(gaussian_weights(net, gen))
    fresh: dict[int, object] = {}
    zeros: list[torch.Tensor] = []  # the tensors whose copies are zeros
    ones: list[torch.Tensor] = []  # and ones
    params: set[int] = set()
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fresh[id(m.weight)] = nn.Parameter(next(drawn).to(m.weight.device), m.weight.requires_grad)
            if m.bias is not None:
                zeros.append(m.bias)
                params.add(id(m.bias))
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            ones.append(m.weight)
            zeros.append(m.bias)
            params.update((id(m.weight), id(m.bias)))
        if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None:
            zeros.append(m.running_mean)
            ones.append(m.running_var)
            if m.momentum is None:  # a cumulative average reads the count
                zeros.append(m.num_batches_tracked)
            else:  # a fixed momentum never reads it: the copy does not count batches (a kernel per forward)
                fresh[id(m.num_batches_tracked)] = None
    for olds, value in ((zeros, 0.0), (ones, 1.0)):
        for old, new in zip(olds, _filled(olds, value), strict=True):
            fresh[id(old)] = nn.Parameter(new, old.requires_grad) if id(old) in params else new
    return copy_with(net, fresh)


def _filled(like: list[torch.Tensor], value: float) -> list[torch.Tensor]:
    """Tensors of `like`'s shapes, dtypes and devices, all `value`: views, none overlapping another, of
    one filled tensor per (dtype, device)."""
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(like):
        groups.setdefault((t.dtype, t.device), []).append(i)
    out: list[torch.Tensor | None] = [None] * len(like)
    for (dtype, device), members in groups.items():
        sizes = [like[i].numel() for i in members]
        flat = torch.full((sum(sizes),), value, dtype=dtype, device=device)
        for i, part in zip(members, flat.split(sizes), strict=True):
            out[i] = part.view(like[i].shape)
    return out  # type: ignore[return-value]: every index is some group's member


def _log_bn_scaling(net: nn.Module) -> torch.Tensor:
    """Σ over the BatchNorms of log √mean(running var), in their dtype: all layers in one
    concatenation and one segmented mean, not three kernels and an addition per layer."""
    variances = [m.running_var for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    if not variances:
        return torch.zeros(())
    flat = torch.cat(variances)
    lengths = torch.tensor([v.numel() for v in variances], device=flat.device)
    return torch.segment_reduce(flat, "mean", lengths=lengths).sqrt_().log_().sum()


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
            log_bn = _log_bn_scaling(net)
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
