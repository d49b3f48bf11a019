"""epe_nas: spread of the per-class Jacobian-correlation scores (Lopes et al. 2021;
NAS-Bench-Suite-Zero `epe_nas`, whose per-class scoring this follows)."""

import warnings

import numpy as np

from zcpipe.workers.proxies.base import Proxy, ProxyUndefined
from zcpipe.workers.proxies.common import input_jacobian
from zcpipe.workers.proxies.registry import PROXIES

K = 1e-5


def score(jacobian: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    rows = jacobian.reshape(jacobian.shape[0], -1).astype(np.float64)
    per_class: dict[int, float] = {}
    for c in np.unique(labels):
        members = rows[labels == c]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            corrs = np.corrcoef(members)  # a single image gives the scalar 1.0, as in the reference
        s = float(np.sum(np.log(np.abs(corrs) + K)))
        if num_classes > 100:
            s /= np.size(corrs) ** 0.5
        per_class[int(c)] = s
    values = np.array(list(per_class.values()))
    if not np.all(np.isfinite(values)):
        raise ProxyUndefined("a class's jacobian rows are constant: the output does not depend on the input")
    if num_classes <= 100:
        return float(np.abs(values[:, None] - values[None, :]).sum() / len(values))
    return float(np.abs(values[:, None] - values[None, :]).sum())


@PROXIES.register("epe_nas", scope="arch", pass_name="data", needs=("input_grad",))
class EpeNas(Proxy):
    def standalone(self, net, batch, ctx):
        return score(input_jacobian(net, batch).cpu().numpy(), batch.labels.cpu().numpy(), batch.num_classes)

    def extract(self, data):
        return score(data.input_grad.cpu().numpy(), data.labels.cpu().numpy(), data.num_classes)
