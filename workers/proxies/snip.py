"""snip: |∂CE/∂θ ⊙ θ| per weight (Lee et al. 2019; zero-cost-nas `snip`).

zero-cost-nas differentiates w.r.t. a weight mask of ones; that gradient is g ⊙ θ,
which is what both paths compute here, without patching the layers' forward.
"""

import torch

from zcpipe.workers.proxies.base import Proxy
from zcpipe.workers.proxies.common import grad_or_zeros, layers_of, loss_backward
from zcpipe.workers.proxies.registry import PROXIES


@PROXIES.register("snip", scope="layer", pass_name="data", needs=("grads",))
class Snip(Proxy):
    def standalone(self, net, batch, ctx):
        loss_backward(net, batch)
        return [(grad_or_zeros(layer) * layer.weight).abs().detach() for layer in layers_of(net)]

    def extract(self, data):
        # One multi-tensor kernel per step for every layer, not one per layer (so below and in the
        # other layer proxies' extractions).
        scores = torch._foreach_mul(data.grads, data.weights)
        torch._foreach_abs_(scores)
        return scores
