"""params and flops: the count pass and its two proxies.

The whole-network `params` is every trainable parameter (what benchmarks report, BN included); the
whole-network `flops` is everything torch's counter sees in one forward of one image. The pass also
gives each weight layer's own counts (weights + bias; its FLOPs), which every row carries as layer
facts beside its shape. The reference is a forward on the meta device under torch's counter
(`count_flops`); the engines count from the shapes of a real forward (`forward_flops`), and plan their
memory from the bytes a real forward of one image saves (`activation_bytes_per_image`).
"""

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count, mm_flop

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
    tells how many bytes the meta decompositions save for an image (more than the kernels do, see
    `activation_bytes_per_image`). `device` is accepted for callers of the earlier signature; the count
    does not depend on it.
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


def activation_bytes_per_image(net: nn.Module, input_shape: tuple[int, ...], dtype: torch.dtype) -> int:
    """The bytes autograd saves for backward in one forward of one image in train mode, as the data
    pass runs it, on the network's device (its BatchNorm statistics are copies, so none moves): what
    micro-batch and arch-batch planning multiply by the images and a factor for the backward. It is what
    the kernels save; the meta pass of `count_flops` measures 3-13 % more (its decompositions save
    more), at about ten times the host time."""
    first = next(net.parameters())
    copies = {name: t.clone() for name, t in net.named_buffers()}
    was_training = net.training
    net.train()
    try:
        with saved_bytes() as saved:
            out = functional_call(net, copies, (torch.zeros((1, *input_shape), dtype=dtype, device=first.device),))
        del out
    finally:
        net.train(was_training)
    return saved.total


@dataclass
class CountPass:
    """What the count pass found: whole-network params and FLOPs, FLOPs per weight layer (module order)
    and the activation bytes autograd saves per image (None where not measured)."""

    params: float
    flops: float
    layer_flops: list[int]
    bytes_per_image: int | None


def count_pass(
    net: nn.Module, input_shape: tuple[int, ...], dtype: torch.dtype, activation_bytes: bool = True
) -> CountPass:
    """The count pass: params are every trainable parameter, as benchmarks report. With
    `activation_bytes`, the reference: on the meta device under torch's counter (`count_flops`, with the
    bytes its decompositions save); without, from one forward of one image (`weight_layer_flops`), ~17x
    less host time."""
    if activation_bytes:
        per_layer, total, saved = count_flops(net, input_shape, dtype=dtype)
        return replace(counts_of(net, (per_layer, total)), bytes_per_image=saved)
    return counts_of(net, weight_layer_flops(net, input_shape, dtype))


def layer_flops(m: nn.Module, out_shape: Sequence[int]) -> int:
    """What torch's counter counts for one call of a Conv2d or Linear `m` whose output has `out_shape`:
    its formulas, `conv_flop_count` (the batch size and output positions are the output's) and `mm_flop`
    (one row per output row). A grouped or stacked layer counts every group's share, as the counter does."""
    if isinstance(m, nn.Conv2d):
        return int(conv_flop_count(list(out_shape), list(m.weight.shape), list(out_shape)))
    rows = math.prod(out_shape[:-1])
    return int(mm_flop([rows, m.in_features], [m.in_features, m.out_features]))


class ForwardFlops:
    """FLOPs of one image per Conv2d and Linear (by `id`), from the output shapes of the first forward of a
    network that completes; see `forward_flops`."""

    def __init__(self) -> None:
        self.by_module: dict[int, int] = {}
        self.done = False

    def result(self, net: nn.Module) -> tuple[list[int], int] | None:
        """(FLOPs per weight layer in module order, total), or None where no forward completed."""
        if not self.done:
            return None
        return [self.by_module.get(id(m), 0) for _, m in weight_layers(net)], sum(self.by_module.values())


@contextmanager
def forward_flops(net: nn.Module) -> Iterator[ForwardFlops]:
    """Count, inside the block, the FLOPs of one image in the first forward of `net` that completes: torch's
    counter's formulas (`layer_flops`) for the shape each Conv2d and Linear gives, with the batch taken
    as one image (both formulas are linear in it). A forward that fails part-way (out of memory) is
    forgotten, and later forwards (micro-batches, GraSP's split passes) are not counted again. The
    spaces' networks have no other op the counter counts, so the total is these layers' sum."""
    counted = ForwardFlops()

    def start(_net: nn.Module, _inputs: tuple) -> None:
        if not counted.done:
            counted.by_module.clear()

    def end(_net: nn.Module, _inputs: tuple, _out: object) -> None:
        counted.done = True

    def layer(m: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        if not counted.done:
            counted.by_module[id(m)] = counted.by_module.get(id(m), 0) + layer_flops(m, (1, *out.shape[1:]))

    handles = [net.register_forward_pre_hook(start), net.register_forward_hook(end)]
    handles += [m.register_forward_hook(layer) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        yield counted
    finally:
        for h in handles:
            h.remove()


def weight_layer_flops(net: nn.Module, input_shape: tuple[int, ...], dtype: torch.dtype) -> tuple[list[int], int]:
    """(FLOPs per weight layer in module order, total FLOPs) of one image, as `count_flops` counts them,
    from one forward of one image on the network's device, in eval mode without autograd (no statistic
    moves; `forward_flops`). tests/test_proxies.py checks both against `count_flops` in every space."""
    first = next(net.parameters())
    was_training = net.training
    net.eval()
    try:
        with forward_flops(net) as counted, torch.no_grad():
            net(torch.zeros((1, *input_shape), dtype=dtype, device=first.device))
    finally:
        net.train(was_training)
    result = counted.result(net)
    if result is None:  # cannot happen: the forward above returned, so its hook ran
        raise RuntimeError("the count's forward did not complete")
    return result


def counts_of(net: nn.Module, flops: tuple[list[int], int]) -> CountPass:
    """The count pass's result from FLOPs counted elsewhere (`forward_flops`): params as `count_pass`."""
    per_layer, total = flops
    return CountPass(float(sum(p.numel() for p in net.parameters())), float(total), per_layer, None)


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
