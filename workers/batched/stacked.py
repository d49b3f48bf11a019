"""Stacked layers: one Conv2d or BatchNorm2d holding several architectures' layers side by side.

They are built from the architectures' own tensors. torch's constructors allocate and initialise a
weight (and a BatchNorm's statistics) that would be replaced at once: about 50 µs each, on the meta
device too, and a batched network of a few architectures has a few hundred of them (about 3 ms of host
time per architecture at B = 4, `bench/batched.py --parts host`). These subclasses keep torch's
`forward`, and with it its semantics (a BatchNorm's statistics, momentum and batch count included);
their constructor sets what that forward reads, the hyperparameters copied from the first layer.
"""

from __future__ import annotations

import torch
import torch.nn as nn

# What nn.Conv2d's forward and repr read besides its parameters: the constants torch lists, and the two
# attributes `_ConvNd.__init__` derives (the padding for non-zero modes, and whether it is transposed).
_CONV_ATTRIBUTES = (*nn.Conv2d.__constants__, "transposed", "_reversed_padding_repeated_twice")


def stacked(tensors: list[torch.Tensor], device: torch.device | None = None) -> torch.Tensor:
    """The tensors one after another along their first dimension, on `device` (theirs where None):
    concatenated where they are, then moved as one copy (a GPU actor's networks are built on the host,
    and one copy per stacked tensor replaces one per tensor of every architecture)."""
    return torch.cat([t.detach() for t in tensors]).to(device or tensors[0].device)


def stacked_parameter(tensors: list[torch.Tensor], device: torch.device | None = None) -> nn.Parameter:
    """`stacked` as a parameter (a copy: the architectures' own networks are left as they were)."""
    return nn.Parameter(stacked(tensors, device))


class StackedConv2d(nn.Conv2d):
    """`convs` (one per architecture, of one shape, no bias) as one grouped convolution: block j of the
    input and output channels is convs[j]'s."""

    def __init__(self, convs: list[nn.Conv2d], device: torch.device | None = None):
        nn.Module.__init__(self)  # not nn.Conv2d's: it would initialise a weight only to replace it
        first, n = convs[0], len(convs)
        if first.bias is not None or first.padding_mode != "zeros":
            raise TypeError("the batched path stacks convolutions without bias, padded with zeros")
        for name in _CONV_ATTRIBUTES:
            setattr(self, name, getattr(first, name))
        self.in_channels, self.out_channels = first.in_channels * n, first.out_channels * n
        self.groups = first.groups * n
        self.weight = stacked_parameter([c.weight for c in convs], device)
        self.register_parameter("bias", None)


class StackedBatchNorm2d(nn.BatchNorm2d):
    """`bns` (one per architecture, affine, tracking statistics, of one eps and momentum) as one
    BatchNorm over their channels side by side: each channel's statistics are over its own images."""

    def __init__(self, bns: list[nn.BatchNorm2d], device: torch.device | None = None):
        nn.Module.__init__(self)  # not nn.BatchNorm2d's: it would allocate and fill what is replaced
        first = bns[0]
        if not (first.affine and first.track_running_stats):
            raise TypeError("the batched path stacks affine BatchNorms that track their statistics")
        for name in nn.BatchNorm2d.__constants__:
            setattr(self, name, getattr(first, name))
        self.num_features = sum(m.num_features for m in bns)
        self.weight = stacked_parameter([m.weight for m in bns], device)
        self.bias = stacked_parameter([m.bias for m in bns], device)
        self.register_buffer("running_mean", stacked([m.running_mean for m in bns], device))
        self.register_buffer("running_var", stacked([m.running_var for m in bns], device))
        # The networks come fresh from their space: every BatchNorm's batch count is the same.
        self.register_buffer("num_batches_tracked", first.num_batches_tracked.clone().to(device or first.weight.device))
