"""jacov: −Σ log(λ+k) + 1/(λ+k) over the eigenvalues λ of the correlation matrix of the
per-image input gradients of the summed logits (Mellor et al. 2021 v1; zero-cost-nas `jacob_cov`)."""

import numpy as np

from zcpipe.workers.proxies.base import Proxy, ProxyUndefined
from zcpipe.workers.proxies.common import input_jacobian
from zcpipe.workers.proxies.registry import PROXIES

K = 1e-5


def score(jacobian: np.ndarray) -> float:
    rows = jacobian.reshape(jacobian.shape[0], -1).astype(np.float64)
    if np.any(rows.std(axis=1) == 0):
        raise ProxyUndefined("jacobian rows are constant: the output does not depend on the input")
    corrs = np.corrcoef(rows)
    # The matrix is symmetric, so its eigenvalues are real; eigvalsh avoids eig's spurious imaginary parts.
    v = np.linalg.eigvalsh(corrs)
    value = float(-np.sum(np.log(v + K) + 1.0 / (v + K)))
    if not np.isfinite(value):
        raise ProxyUndefined("correlation matrix has eigenvalues below -1e-5")
    return value


@PROXIES.register("jacov", scope="arch", pass_name="data", needs=("input_grad",))
class Jacov(Proxy):
    def standalone(self, net, batch, ctx):
        return score(input_jacobian(net, batch).cpu().numpy())

    def extract(self, data):
        return score(data.input_grad.cpu().numpy())
