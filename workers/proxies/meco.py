"""meco: Σ over layers of the smallest eigenvalue of the channel-by-channel correlation matrix of the
layer's feature map, on one random input (Jiang et al., NeurIPS 2023, "MeCo: Zero-Shot NAS with One
Data and Single Forward Pass via Minimum Eigenvalue of Correlation"; HamsterMimi/MeCo `meco`).

As the reference computes it: one Gaussian image of 64×64 (whatever the task's image size; the networks
pool globally), a forward in train mode, and for each feature map of the first (only) image, C channels ×
H·W positions, the Pearson correlation between channels (a constant channel's NaN entries read as 0)
and its smallest eigenvalue. Node-wise here: the terms of the weight layers' outputs (the convolutions
before their BatchNorm); a layer whose output has one position (the classifier) has no correlation and
is NULL, left out of the sum (the reference's NaN-zeroed matrix gives it 0). The reference hooks every
module, containers, BatchNorm and ReLU included; the sum over weight layers is what ParZC-style
predictors read per node (docs/proxies.md says how the two rank).
"""

import copy

import torch

from zcpipe.workers.proxies.base import Proxy
from zcpipe.workers.proxies.common import layers_of
from zcpipe.workers.proxies.registry import PROXIES

IMAGE_SIZE = 64  # the reference's input, 1×3×64×64


def min_eig_of_channel_correlation(feature: torch.Tensor) -> torch.Tensor:
    """λ_min of the C×C correlation of one feature map (C, ...) over its positions; NaN with one position."""
    x = feature.detach().reshape(feature.shape[0], -1).double()
    if x.shape[1] < 2:
        return torch.tensor(float("nan"), dtype=torch.float64, device=x.device)
    corr = torch.nan_to_num(torch.corrcoef(x), nan=0.0, posinf=0.0, neginf=0.0)
    return torch.linalg.eigvalsh(corr)[0]


@PROXIES.register("meco", scope="layer", pass_name="own")
class Meco(Proxy):
    undefined_layers = "a feature map with one position has no channel correlation"

    def standalone(self, net, batch, ctx):
        net = copy.deepcopy(net)  # its forward in train mode moves BatchNorm's running statistics
        gen = torch.Generator(device="cpu").manual_seed(ctx.generator_seed)
        x = torch.randn((1, batch.images.shape[1], IMAGE_SIZE, IMAGE_SIZE), generator=gen, dtype=batch.images.dtype)
        layers = layers_of(net)
        out: list[torch.Tensor | None] = [None] * len(layers)

        def keep(i):
            def hook(_m, _inp, output):
                out[i] = min_eig_of_channel_correlation(output[0])

            return hook

        handles = [layer.register_forward_hook(keep(i)) for i, layer in enumerate(layers)]
        try:
            net.train()
            with torch.no_grad():
                net(x.to(batch.images.device))
        finally:
            for h in handles:
                h.remove()
        nan = torch.tensor(float("nan"), dtype=torch.float64, device=batch.images.device)
        return [v if v is not None else nan for v in out]  # a layer the forward never reached: no value
