"""params and flops for B architectures from one forward of their batched network.

The single engine's count pass runs each network on the meta device under torch's FLOP counter:
about 0.1 s of host time per NB201 architecture (meta BatchNorm decomposes in Python), which alone
would hold a GPU actor under 10 architectures per second. Here one forward of one image through the
batched network, in eval mode without autograd (no statistic moves, nothing is saved), gives every
stacked layer's output shape; each layer's FLOPs are torch's counter's own formulas for that shape
(`counts.layer_flops`), split evenly among the layer's architectures, which all have its
shape. The values equal the count pass's (tests/test_batched.py).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from zcpipe.workers.batched.network import BatchedNetwork
from zcpipe.workers.proxies.counts import CountPass, counts_of, layer_flops


def batched_counts(net: BatchedNetwork, models: list[nn.Module], image_shape: tuple[int, ...]) -> list[CountPass]:
    """Each of `models`' count pass (params; FLOPs of one image, per weight layer and in all), from
    `net`, their batched network. Activation bytes are not measured (None)."""
    flops_of: dict[int, int] = {}

    def on_output(index: int, y: torch.Tensor) -> None:
        # A stacked layer (one grouped convolution; the classifier, `in_features` C and B·K outputs) counts
        # its architectures' sum, as the counter would for that one call.
        flops_of[index] = flops_of.get(index, 0) + layer_flops(net.layout.layers[index].module, y.shape)

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
        per_layer = [flops_of[i] // len(net.layout.layers[i].archs) for i, _ in net.layout.of_arch[b]]
        out.append(counts_of(model, (per_layer, sum(per_layer))))
    return out
