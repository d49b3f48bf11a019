"""plain: ∂CE/∂θ ⊙ θ per weight, signed (zero-cost-nas `plain`)."""

import torch

from zcpipe.workers.proxies.base import Proxy
from zcpipe.workers.proxies.common import grad_or_zeros, layers_of, loss_backward
from zcpipe.workers.proxies.registry import PROXIES


@PROXIES.register("plain", scope="layer", pass_name="data", needs=("grads",))
class Plain(Proxy):
    def standalone(self, net, batch, ctx):
        loss_backward(net, batch)
        return [(grad_or_zeros(layer) * layer.weight).detach() for layer in layers_of(net)]

    def extract(self, data):
        return torch._foreach_mul(data.grads, data.weights)
