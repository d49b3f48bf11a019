"""zico: Σ over layers of log Σ_θ mean|g_θ| / std(g_θ), the gradients' mean absolute value over their
standard deviation across batches (Li et al., ICLR 2023, "ZiCo: Zero-shot NAS via Inverse Coefficient
of Variation on Gradients"; SLDGroup/ZiCo `ZeroShotProxy/compute_zico.py`).

As the reference computes it: two batches (here the two halves of the minibatch, so both are in the
configuration's batch hash), a forward and cross-entropy backward of each in train mode, the weight
gradients of every Conv2d and Linear read after each backward. The reference does not zero the
gradients between the two, so its two samples are g₁ and g₁ + g₂; this follows it. Per layer, over the
weights whose two samples differ: log Σ mean|g| / std (population std). A layer where no weight's
gradient differs has no value: NULL, left out of the sum, as the reference skips it.
"""

import copy

import torch
import torch.nn.functional as F

from zcpipe.workers.proxies.base import Proxy, ProxyUndefined
from zcpipe.workers.proxies.common import layers_of
from zcpipe.workers.proxies.registry import PROXIES


def layer_term(samples: torch.Tensor) -> torch.Tensor:
    """log Σ mean|g| / std over the weights whose samples (rows) vary; NaN where none does."""
    g = samples.double()
    std = g.std(dim=0, unbiased=False)
    varies = std != 0
    # Division only where the samples vary; no Python branch on a value, so no device sync per layer.
    total = torch.where(varies, g.abs().mean(dim=0) / torch.where(varies, std, 1.0), 0.0).sum()
    return torch.where(total > 0, torch.log(total), torch.full_like(total, float("nan")))


@PROXIES.register("zico", scope="layer", pass_name="own")
class Zico(Proxy):
    undefined_layers = "no weight's gradient differs between the two batches"

    def standalone(self, net, batch, ctx):
        n = batch.images.shape[0]
        if n < 2:
            raise ProxyUndefined("zico needs two batches: a minibatch of at least 2 images")
        net = copy.deepcopy(net)  # its backward writes gradients, its forwards move BatchNorm statistics
        layers = layers_of(net)
        net.train()
        net.zero_grad()
        samples: list[list[torch.Tensor]] = [[] for _ in layers]
        for s, e in ((0, n // 2), (n // 2, n)):
            F.cross_entropy(net(batch.images[s:e]), batch.labels[s:e]).backward()  # accumulates, as the reference
            for i, layer in enumerate(layers):
                g = layer.weight.grad
                samples[i].append(torch.zeros_like(layer.weight) if g is None else g.detach().clone())
        return [layer_term(torch.stack([t.flatten() for t in pair])) for pair in samples]
