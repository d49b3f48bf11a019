"""jacov: −Σ log(λ+k) + 1/(λ+k) over the eigenvalues λ of the correlation matrix of the
per-image input gradients of the summed logits (Mellor et al. 2021 v1; zero-cost-nas `jacob_cov`)."""

import torch

from zcpipe.workers.proxies.base import Proxy, ProxyUndefined, value_or_raise
from zcpipe.workers.proxies.common import correlations, input_jacobian, row_ranges
from zcpipe.workers.proxies.passes import ArchInputs
from zcpipe.workers.proxies.registry import PROXIES

K = 1e-5
CONSTANT = "jacobian rows are constant: the output does not depend on the input"
NOT_FINITE = "the input gradients are not finite (the network's output overflows)"
NEGATIVE = "correlation matrix has eigenvalues below -1e-5"


def scores(jacobians: torch.Tensor) -> list[float | ProxyUndefined]:
    """jacov of each of B networks from its per-image input gradients (`[B, N, ...]`), in float64 on
    their device, with one copy to the host for all."""
    low, high = row_ranges(jacobians)
    not_finite = ~(torch.isfinite(low) & torch.isfinite(high)).all(dim=1)
    constant = (low == high).any(dim=1)
    rows = jacobians.flatten(2).double()
    corrs = correlations(rows)
    # A network with a constant or non-finite row has no correlation matrix (NaN); the identity stands
    # in for it so that the others' eigenvalues are still computed together. The matrix is symmetric, so
    # its eigenvalues are real; eigvalsh avoids eig's spurious imaginary parts.
    eye = torch.eye(rows.shape[1], dtype=rows.dtype, device=rows.device)
    corrs = torch.where((constant | not_finite)[:, None, None], eye, corrs)
    v = torch.linalg.eigvalsh(corrs)
    values = -(torch.log(v + K) + 1.0 / (v + K)).sum(dim=1)
    host = torch.stack([values, constant.double(), not_finite.double()]).cpu().tolist()
    out: list[float | ProxyUndefined] = []
    for value, is_constant, is_not_finite in zip(*host, strict=True):
        if is_not_finite:
            out.append(ProxyUndefined(NOT_FINITE))
        elif is_constant:
            out.append(ProxyUndefined(CONSTANT))
        elif value != value or abs(value) == float("inf"):
            out.append(ProxyUndefined(NEGATIVE))
        else:
            out.append(value)
    return out


@PROXIES.register("jacov", scope="arch", pass_name="data", needs=("input_grad",))
class Jacov(Proxy):
    def standalone(self, net, batch, ctx):
        return value_or_raise(scores(input_jacobian(net, batch)[None])[0])

    def extract(self, data):
        return value_or_raise(self.extract_archs(ArchInputs.of(data))[0])

    def extract_archs(self, inputs):
        return scores(inputs.input_grad)
