"""grad_norm: ‖∂CE/∂θ‖₂ per layer (zero-cost-nas `grad_norm`)."""

import torch

from zcpipe.workers.proxies.base import Proxy
from zcpipe.workers.proxies.common import float64_squares, grad_or_zeros, layers_of, loss_backward
from zcpipe.workers.proxies.registry import PROXIES


@PROXIES.register("grad_norm", scope="layer", pass_name="data", needs=("grads",))
class GradNorm(Proxy):
    finish = "sqrt"

    def standalone(self, net, batch, ctx):
        loss_backward(net, batch)
        return [grad_or_zeros(layer).double().norm() for layer in layers_of(net)]

    def extract(self, data):
        return list(torch._foreach_norm(data.grads, 2, dtype=torch.float64))  # each g.double().norm()

    def elements(self, data):
        return float64_squares(data.grads)
