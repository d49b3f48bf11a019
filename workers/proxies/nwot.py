"""nwot: log|det K|, K the Hamming-similarity kernel of the ReLU activation codes over the
batch (Mellor et al. 2021, NASWOT; NAS-Bench-Suite-Zero `nwot`, which hooks every ReLU's input)."""

import numpy as np
import torch
import torch.nn as nn

from zcpipe.workers.proxies.base import Proxy, ProxyUndefined
from zcpipe.workers.proxies.registry import PROXIES


def score(kernel: np.ndarray | None) -> float:
    if kernel is None or not kernel.any():
        raise ProxyUndefined("the network has no nn.ReLU whose activation codes nwot reads")
    sign, logdet = np.linalg.slogdet(kernel)
    if sign <= 0 or not np.isfinite(logdet):
        raise ProxyUndefined("activation-code kernel is singular (two images share every ReLU code)")
    return float(logdet)


@PROXIES.register("nwot", scope="arch", pass_name="data", needs=("relu_codes",))
class Nwot(Proxy):
    def standalone(self, net, batch, ctx):
        n = batch.images.shape[0]
        kernel = np.zeros((n, n))

        def hook(_m, inp, _out):
            x = (inp[0].detach().flatten(1) > 0).float()
            k = x @ x.t() + (1.0 - x) @ (1.0 - x).t()
            kernel[:] += k.double().cpu().numpy()

        handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
        try:
            net.train()
            with torch.no_grad():
                net(batch.images)
        finally:
            for h in handles:
                h.remove()
        return score(kernel)

    def extract(self, data):
        return score(data.nwot_kernel)
