"""params and flops: per-layer counts (weights + bias; FLOPs by torch's flop counter for one image).

The whole-network `params` is every trainable parameter (what benchmarks report, BN
included); the whole-network `flops` is everything torch's counter sees in one forward.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from zcpipe.workers.proxies.base import Proxy
from zcpipe.workers.proxies.registry import PROXIES
from zcpipe.workers.spaces.base import weight_layers


def layer_params(layer: nn.Module) -> int:
    return sum(p.numel() for p in layer.parameters(recurse=False))


class SavedBytes:
    """How many bytes autograd saved for backward while `saved_bytes()` was open."""

    total = 0


@contextmanager
def saved_bytes() -> Iterator[SavedBytes]:
    """Count the bytes of every tensor autograd saves inside the block (the activation memory a batch
    costs, which micro-batch planning needs)."""
    count = SavedBytes()

    def pack(t: torch.Tensor) -> torch.Tensor:
        count.total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield count


def count_flops(
    net: nn.Module, input_shape: tuple[int, ...], device: torch.device, dtype: torch.dtype = torch.float32
) -> tuple[list[int], int, int]:
    """(FLOPs per weight layer in module order, total FLOPs, bytes autograd saves) for one image.

    The forward runs in train mode with autograd on, as the data pass does, so the same pass also
    tells how much activation memory an image costs (what micro-batch planning needs).
    """
    was_training = net.training
    net.train()
    try:
        with FlopCounterMode(display=False) as counter, saved_bytes() as saved:
            net(torch.zeros((1, *input_shape), device=device, dtype=dtype))
    finally:
        net.train(was_training)
    by_module = counter.get_flop_counts()
    prefix = type(net).__name__
    per_layer = [int(sum(by_module.get(f"{prefix}.{name}", {}).values())) for name, _ in weight_layers(net)]
    return per_layer, int(counter.get_total_flops()), saved.total


@PROXIES.register("params", scope="layer", pass_name="count")
class Params(Proxy):
    pass


@PROXIES.register("flops", scope="layer", pass_name="count")
class Flops(Proxy):
    pass
