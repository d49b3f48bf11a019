"""params and flops for B architectures from one forward of their batched network.

The single engine's count pass runs each network on the meta device under torch's FLOP counter:
about 0.1 s of host time per NB201 architecture (meta BatchNorm decomposes in Python), which alone
would hold a GPU actor under 10 architectures per second. Here one forward of one image through the
batched network, in eval mode without autograd (no statistic moves, nothing is saved), gives every
stacked layer's output shape; each layer's FLOPs are torch's counter's own formulas for that shape
(`conv_flop_count`, `mm_flop`), split evenly among the layer's architectures, which all have its
shape. The values equal the count pass's (tests/test_batched.py).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.flop_counter import conv_flop_count, mm_flop

from zcpipe.workers.batched.network import BatchedNetwork
from zcpipe.workers.proxies.counts import CountPass


def batched_counts(net: BatchedNetwork, models: list[nn.Module], image_shape: tuple[int, ...]) -> list[CountPass]:
    """Each of `models`' count pass (params; FLOPs of one image, per weight layer and in all), from
    `net`, their batched network. Activation bytes are not measured (None: a plan probes them)."""
    flops_of: dict[int, int] = {}

    def on_output(index: int, y: torch.Tensor) -> None:
        layer = net.layout.layers[index]
        m = layer.module
        if isinstance(m, nn.Conv2d):  # one grouped convolution: its FLOPs are its architectures' sum
            flops = conv_flop_count(list(y.shape), list(m.weight.shape), list(y.shape))
        else:  # the classifier: one matrix product per architecture
            n = len(layer.archs)
            k, c = m.weight.shape[0] // n, m.weight.shape[1]
            flops = n * mm_flop([y.shape[0], c], [c, k])
        flops_of[index] = flops_of.get(index, 0) + int(flops)

    first = net.layout.layers[0].module.weight
    x = torch.zeros((1, *image_shape), dtype=first.dtype, device=first.device)
    was_training, hook = net.training, net.hooks.on_output
    net.eval()
    net.hooks.on_output = on_output
    try:
        with torch.no_grad():
            net(x)
    finally:
        net.train(was_training)
        net.hooks.on_output = hook
    out = []
    for b, model in enumerate(models):
        layer_flops = [flops_of[i] // len(net.layout.layers[i].archs) for i, _ in net.layout.of_arch[b]]
        params = float(sum(p.numel() for p in model.parameters()))  # as the count pass: every parameter
        out.append(CountPass(params, float(sum(layer_flops)), layer_flops, None))
    return out
