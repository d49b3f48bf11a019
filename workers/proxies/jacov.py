"""jacov: −Σ log(λ+k) + 1/(λ+k) over the eigenvalues λ of the correlation matrix of the
per-image input gradients of the summed logits (Mellor et al. 2021 v1; zero-cost-nas `jacob_cov`)."""

import math

import torch

from zcpipe.workers.proxies.base import Proxy, ProxyUndefined, value_or_raise
from zcpipe.workers.proxies.common import input_jacobian
from zcpipe.workers.proxies.correlation import NOT_FINITE
from zcpipe.workers.proxies.passes import ArchInputs
from zcpipe.workers.proxies.registry import PROXIES

K = 1e-5
CONSTANT = "jacobian rows are constant: the output does not depend on the input"
NEGATIVE = "correlation matrix has eigenvalues below -1e-5"


def scores(inputs: ArchInputs) -> list[float | ProxyUndefined]:
    """jacov of each of the B networks whose input gradients `inputs` holds, in float64 on their device,
    with one copy to the host for all."""
    spreads = inputs.row_spreads()
    not_finite = ~torch.isfinite(spreads).all(dim=1)
    constant = (spreads == 0).any(dim=1)
    corrs = inputs.input_correlations()
    # A network with a constant or non-finite row has no correlation matrix (NaN); the identity stands
    # in for it so that the others' eigenvalues are still computed together. The matrix is symmetric, so
    # its eigenvalues are real; eigvalsh avoids eig's spurious imaginary parts.
    eye = torch.eye(corrs.shape[1], dtype=corrs.dtype, device=corrs.device)
    v = torch.linalg.eigvalsh(torch.where((constant | not_finite)[:, None, None], eye, corrs))
    shifted = v + K
    values = -(torch.log(shifted) + shifted.reciprocal()).sum(dim=1)
    host = torch.stack([values, constant.double(), not_finite.double()]).cpu().tolist()
    out: list[float | ProxyUndefined] = []
    for value, is_constant, is_not_finite in zip(*host, strict=True):
        if is_not_finite:
            out.append(ProxyUndefined(NOT_FINITE))
        elif is_constant:
            out.append(ProxyUndefined(CONSTANT))
        elif not math.isfinite(value):
            out.append(ProxyUndefined(NEGATIVE))
        else:
            out.append(value)
    return out


@PROXIES.register("jacov", scope="arch", pass_name="data", needs=("input_grad",))
class Jacov(Proxy):
    def standalone(self, net, batch, ctx):
        grads = input_jacobian(net, batch)[None]
        return value_or_raise(scores(ArchInputs(1, batch.labels, batch.num_classes, grads))[0])

    def extract(self, data):
        return value_or_raise(scores(data.archs())[0])

    def extract_archs(self, inputs):
        return scores(inputs)
