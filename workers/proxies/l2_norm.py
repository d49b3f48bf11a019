"""l2_norm: ‖θ‖₂ per layer (NAS-Bench-Suite-Zero `l2_norm`)."""

import torch

from zcpipe.workers.proxies.base import Proxy
from zcpipe.workers.proxies.common import float64_squares, layers_of
from zcpipe.workers.proxies.registry import PROXIES


@PROXIES.register("l2_norm", scope="layer", pass_name="weights")
class L2Norm(Proxy):
    finish = "sqrt"

    def standalone(self, net, batch, ctx):
        # Each weight's float64 norm, as `w.double().norm()`, in one multi-tensor kernel.
        return list(torch._foreach_norm([layer.weight.detach() for layer in layers_of(net)], 2, dtype=torch.float64))

    def elements(self, data):
        return float64_squares(data.weights)
