"""grasp: −θ ⊙ Hg, H the Hessian and g the gradient of CE (Wang et al. 2020; zero-cost-nas `grasp`)."""

import torch
import torch.nn.functional as F

from zcpipe.workers.proxies.base import Proxy
from zcpipe.workers.proxies.common import layers_of
from zcpipe.workers.proxies.registry import PROXIES


@PROXIES.register("grasp", scope="layer", pass_name="data", needs=("grads", "hvp"))
class Grasp(Proxy):
    def standalone(self, net, batch, ctx):
        # The reference's two forwards: g from the first, Hg by differentiating g·stopgrad(g) from the second.
        layers = layers_of(net)
        weights = [layer.weight for layer in layers]
        net.train()
        net.zero_grad()
        loss = F.cross_entropy(net(batch.images), batch.labels)
        grad_w = torch.autograd.grad(loss, weights, allow_unused=True)
        loss = F.cross_entropy(net(batch.images), batch.labels)
        grad_f = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
        z = sum((gw.detach() * gf).sum() for gw, gf in zip(grad_w, grad_f, strict=True) if gw is not None)
        z.backward()
        return [
            (-layer.weight.detach() * layer.weight.grad)
            if layer.weight.grad is not None
            else torch.zeros_like(layer.weight)
            for layer in layers
        ]

    def extract(self, data):
        scores = torch._foreach_mul(data.weights, data.hg)
        torch._foreach_neg_(scores)  # −(θ ⊙ Hg), bit for bit −θ ⊙ Hg
        return scores
