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
        params = [p for m in net.modules() if id(m) not in bypassed for p in m.parameters(recurse=False)]
        net = copy_with(net, {**absolute_float64(params), **bypassed}).double()
        with torch.no_grad():
            for t in net.buffers():  # none in the spaces' networks once BatchNorm is gone
                t.abs_()
        x = torch.ones((1, *batch.images.shape[1:]), dtype=torch.float64, device=batch.images.device)
        net(x).sum().backward()
        layers = layers_of(net)
        reached = [layer.weight for layer in layers if layer.weight.grad is not None]
        scores = iter(_abs_products([w.detach() for w in reached], [w.grad for w in reached]))
        return [next(scores) if layer.weight.grad is not None else torch.zeros_like(layer.weight) for layer in layers]

    def extract(self, data):
        # The batched path's synflow pass: `weights` are |θ| in float64, `grads` those of Σ outputs.
        return _abs_products(data.weights, data.grads)


def absolute_float64(params: list[nn.Parameter]) -> dict[int, nn.Parameter]:
    """|θ| in float64 for each parameter, by `id`: views of one tensor made by one concatenation, one
    conversion and one absolute value rather than two kernels per parameter (the single engine's copy
    takes them as `copy_with` replacements, the batched path's pass as substitutes)."""
    if not params:
        return {}
    flat = torch.cat([p.detach().reshape(-1) for p in params]).to(torch.float64).abs_()
    parts = flat.split([p.numel() for p in params])
    return {id(p): nn.Parameter(part.view(p.shape)) for p, part in zip(params, parts, strict=True)}


def _abs_products(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
    if not a:
        return []
    scores = torch._foreach_mul(a, b)
    torch._foreach_abs_(scores)
    return scores
