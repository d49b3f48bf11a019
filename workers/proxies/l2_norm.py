"""l2_norm: ‖θ‖₂ per layer (NAS-Bench-Suite-Zero `l2_norm`)."""

from zcpipe.workers.proxies.base import Proxy
from zcpipe.workers.proxies.common import layers_of
from zcpipe.workers.proxies.registry import PROXIES


@PROXIES.register("l2_norm", scope="layer", pass_name="weights")
class L2Norm(Proxy):
    finish = "sqrt"

    def standalone(self, net, batch, ctx):
        return [layer.weight.detach().double().norm() for layer in layers_of(net)]

    def elements(self, data):
        return [w.double().square() for w in data.weights]
