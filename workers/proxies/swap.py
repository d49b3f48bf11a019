"""swap: the number of distinct sample-wise activation patterns (Peng et al., ICLR 2024, "SWAP-NAS";
pym1024/SWAP `src/metrics/swap.py`).

As the reference computes it: a no-grad forward in train mode of the batch's first 16 images (its
`input_samples`), the outputs of every nn.ReLU that takes a 4-D map, each image's activations side by
side (images × neurons), their signs; a neuron's pattern is its column of signs over the images, and the
score is how many distinct patterns there are. The reference averages 32 Gaussian re-initialisations;
here, like every other proxy, it reads the network's one seeded initialisation. Its regularised form,
`swap × exp(−(params − μ)² / σ)`, is a function of this value and the stored `params`, so it is computed
where μ and σ are chosen (a query), not stored.
"""

import copy

import torch
import torch.nn as nn

from zcpipe.workers.proxies.base import Proxy, ProxyUndefined
from zcpipe.workers.proxies.registry import PROXIES

SAMPLES = 16  # the reference's input_samples; at most 62 fit one int64 code


def distinct_patterns(signs: torch.Tensor) -> int:
    """Distinct columns of a binary (images × neurons) matrix: each column packed into one integer."""
    weights = 2 ** torch.arange(signs.shape[0], dtype=torch.int64, device=signs.device)
    codes = (signs.to(torch.int64) * weights[:, None]).sum(0)
    return int(torch.unique(codes).numel())


@PROXIES.register("swap", scope="arch", pass_name="own")
class Swap(Proxy):
    def standalone(self, net, batch, ctx):
        net = copy.deepcopy(net)  # its forward in train mode moves BatchNorm's running statistics
        x = batch.images[:SAMPLES]
        maps: list[torch.Tensor] = []

        def hook(_m, inp, output):
            if inp[0].dim() == 4:
                maps.append((output.detach() > 0).flatten(1))

        handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
        try:
            net.train()
            with torch.no_grad():
                net(x)
        finally:
            for h in handles:
                h.remove()
        if not maps:
            raise ProxyUndefined("the network has no nn.ReLU on a feature map, whose patterns swap counts")
        return float(distinct_patterns(torch.cat(maps, dim=1)))
