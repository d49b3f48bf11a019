"""params and flops: the count pass and its two proxies.

The whole-network `params` is every trainable parameter (what benchmarks report, BN included); the
whole-network `flops` is everything torch's counter sees in one forward of one image. The pass also
gives each weight layer's own counts (weights + bias; its FLOPs), which every row carries as layer
facts beside its shape, and the activation bytes per image that micro-batch planning needs.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.func import functional_call
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
    net: nn.Module, input_shape: tuple[int, ...], device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> tuple[list[int], int, int]:
    """(FLOPs per weight layer in module order, total FLOPs, bytes autograd saves) for one image.

    The forward runs on the meta device (`functional_call` with shape-only copies of every parameter and
    buffer): it launches no kernel and leaves the network's BatchNorm statistics untouched, but its host
    time is not small (about 0.1 s per NB201 network, most of it meta BatchNorm and the counter's
    dispatch; the batched path counts B networks from one forward instead, workers/batched/counts.py).
    It runs in train mode with autograd on, as the data pass does, so it also
    tells how much activation memory an image costs (what micro-batch planning needs). `device` is
    accepted for callers of the earlier signature; the count does not depend on it.
    """
    del device
    meta = {name: torch.empty_like(t, device="meta") for name, t in [*net.named_parameters(), *net.named_buffers()]}
    for name, t in net.named_parameters():
        meta[name].requires_grad_(t.requires_grad)
    was_training = net.training
    net.train()
    try:
        with FlopCounterMode(display=False) as counter, saved_bytes() as saved:
            functional_call(net, meta, (torch.zeros((1, *input_shape), device="meta", dtype=dtype),))
    finally:
        net.train(was_training)
    by_module = counter.get_flop_counts()
    prefix = type(net).__name__
    per_layer = [int(sum(by_module.get(f"{prefix}.{name}", {}).values())) for name, _ in weight_layers(net)]
    return per_layer, int(counter.get_total_flops()), saved.total


@dataclass
class CountPass:
    """What the count pass found: whole-network params and FLOPs, FLOPs per weight layer (module order)
    and the activation bytes autograd saves per image (None where not measured)."""

    params: float
    flops: float
    layer_flops: list[int]
    bytes_per_image: int | None


def count_pass(net: nn.Module, input_shape: tuple[int, ...], dtype: torch.dtype) -> CountPass:
    """The count pass, on the meta device (no kernels): params are every trainable parameter, as
    benchmarks report."""
    params = float(sum(p.numel() for p in net.parameters()))
    per_layer, total, saved = count_flops(net, input_shape, dtype=dtype)
    return CountPass(params, float(total), per_layer, saved)


class _Count(Proxy):
    def standalone(self, net, batch, ctx):
        return self.extract(count_pass(net, tuple(batch.images.shape[1:]), batch.images.dtype))


@PROXIES.register("params", scope="arch", pass_name="count")
class Params(_Count):
    def extract(self, data: CountPass) -> float:
        return data.params


@PROXIES.register("flops", scope="arch", pass_name="count")
class Flops(_Count):
    def extract(self, data: CountPass) -> float:
        return data.flops
