"""fisher: per output channel ½·mean_n(Σ_spatial a ⊙ ∂CE/∂a)², a the layer's output,
broadcast over the channel's weights (Turner et al. 2020; zero-cost-nas `fisher`)."""

import torch
import torch.nn.functional as F

from zcpipe.workers.proxies.base import Proxy
from zcpipe.workers.proxies.common import layers_of
from zcpipe.workers.proxies.registry import PROXIES


def broadcast(per_channel: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """|per_channel| over the weight's shape (a view)."""
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return per_channel.abs().reshape(shape).expand(weight.shape)


@PROXIES.register("fisher", scope="layer", pass_name="data", needs=("acts",))
class Fisher(Proxy):
    def standalone(self, net, batch, ctx):
        layers = layers_of(net)
        acts: dict[int, torch.Tensor] = {}
        fisher: dict[int, torch.Tensor] = {}

        def forward_hook(i):
            def hook(_m, _inp, out):
                acts[i] = out
                out.register_hook(lambda grad: fisher.__setitem__(i, _channel_fisher(acts[i], grad)))

            return hook

        handles = [layer.register_forward_hook(forward_hook(i)) for i, layer in enumerate(layers)]
        try:
            net.train()
            net.zero_grad()
            F.cross_entropy(net(batch.images), batch.labels).backward()
        finally:
            for h in handles:
                h.remove()
        return [
            broadcast(fisher.get(i, torch.zeros(layer.weight.shape[0])).to(layer.weight.device), layer.weight)
            for i, layer in enumerate(layers)
        ]

    def extract(self, data):
        # A layer's value is Σ over its weights of their channel's value, Σ_c fan-in·|f_c|: per channel,
        # so the float64 sums read C values, not a broadcast copied to the weight's size. Also the batched
        # path's elements: a stacked layer's channels are its architectures' blocks, one after another.
        scores = torch._foreach_abs(data.fisher)
        torch._foreach_mul_(scores, [float(w[0].numel()) for w in data.weights])
        return scores


def _channel_fisher(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    prod = act.detach() * grad.detach()
    g_nk = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
    return g_nk.pow(2).mean(0).mul(0.5)
