"""synflow: |θ ⊙ ∂R/∂θ| with all weights and buffers made absolute, float64, BatchNorm
bypassed, an input of ones, R the sum of the outputs (Tanaka et al. 2020; zero-cost-nas `synflow`).

Its own pass by definition: it needs a float64, BN-free copy with |θ|.
"""

import torch
import torch.nn as nn

from zcpipe.workers.proxies.base import Proxy
from zcpipe.workers.proxies.common import copy_with, layers_of, without_batchnorm
from zcpipe.workers.proxies.registry import PROXIES


@PROXIES.register("synflow", scope="layer", pass_name="synflow")
class Synflow(Proxy):
    def standalone(self, net, batch, ctx):
        # The copy is made with |θ| in float64 in place of each parameter and an identity in place of each
        # BatchNorm, so no tensor is copied only to be converted or dropped.
        bypassed = without_batchnorm(net)
        absolute = {
            id(p): nn.Parameter(p.detach().to(torch.float64).abs())
            for m in net.modules()
            if id(m) not in bypassed
            for p in m.parameters(recurse=False)
        }
        net = copy_with(net, {**absolute, **bypassed}).double()
        with torch.no_grad():
            for t in net.buffers():  # none in the spaces' networks once BatchNorm is gone
                t.abs_()
        x = torch.ones((1, *batch.images.shape[1:]), dtype=torch.float64, device=batch.images.device)
        net(x).sum().backward()
        return [
            (layer.weight * layer.weight.grad).abs().detach()
            if layer.weight.grad is not None
            else torch.zeros_like(layer.weight)
            for layer in layers_of(net)
        ]

    def extract(self, data):
        # The batched path's synflow pass: `weights` are |θ| in float64, `grads` those of Σ outputs.
        scores = torch._foreach_mul(data.weights, data.grads)
        torch._foreach_abs_(scores)
        return scores
