"""nwot: log|det K|, K the Hamming-similarity kernel of the ReLU activation codes over the
batch (Mellor et al. 2021, NASWOT; NAS-Bench-Suite-Zero `nwot`, which hooks every ReLU's input)."""

import math

import torch
import torch.nn as nn

from zcpipe.workers.proxies.base import Proxy, ProxyUndefined, value_or_raise
from zcpipe.workers.proxies.registry import PROXIES

NO_RELU = "the network has no nn.ReLU whose activation codes nwot reads"
SINGULAR = "activation-code kernel is singular (two images share every ReLU code)"


def scores(kernels: torch.Tensor | None, n_archs: int = 1) -> list[float | ProxyUndefined]:
    """log|det K| of each of B networks' NASWOT kernel (`[B, N, N]`, float64; None: no nn.ReLU in any), on
    their device, with one copy to the host for all."""
    if kernels is None:
        return [ProxyUndefined(NO_RELU)] * n_archs
    sign, logdet = torch.linalg.slogdet(kernels)
    empty = ~kernels.flatten(1).any(dim=1)
    host = torch.stack([sign, logdet, empty.double()]).cpu().tolist()
    out: list[float | ProxyUndefined] = []
    for s, value, is_empty in zip(*host, strict=True):
        if is_empty:
            out.append(ProxyUndefined(NO_RELU))
        elif s <= 0 or not math.isfinite(value):
            out.append(ProxyUndefined(SINGULAR))
        else:
            out.append(value)
    return out


@PROXIES.register("nwot", scope="arch", pass_name="data", needs=("relu_codes",))
class Nwot(Proxy):
    def standalone(self, net, batch, ctx):
        n = batch.images.shape[0]
        kernel = torch.zeros((n, n), dtype=torch.float64)

        def hook(_m, inp, _out):
            x = (inp[0].detach().flatten(1) > 0).float()
            k = x @ x.t() + (1.0 - x) @ (1.0 - x).t()
            kernel.add_(k.double().cpu())

        handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
        try:
            net.train()
            with torch.no_grad():
                net(batch.images)
        finally:
            for h in handles:
                h.remove()
        return value_or_raise(scores(kernel[None])[0])

    def extract(self, data):
        return value_or_raise(self.extract_archs(data.archs())[0])

    def extract_archs(self, inputs):
        return scores(inputs.nwot_kernels, inputs.n_archs)
