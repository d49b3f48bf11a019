"""epe_nas: spread of the per-class Jacobian-correlation scores (Lopes et al. 2021;
NAS-Bench-Suite-Zero `epe_nas`, whose per-class scoring this follows)."""

import math

import torch
import torch.nn.functional as F

from zcpipe.workers.proxies.base import Proxy, ProxyUndefined, value_or_raise
from zcpipe.workers.proxies.common import input_jacobian
from zcpipe.workers.proxies.correlation import NOT_FINITE
from zcpipe.workers.proxies.passes import ArchInputs
from zcpipe.workers.proxies.registry import PROXIES

K = 1e-5
CONSTANT = "a class's jacobian rows are constant: the output does not depend on the input"


def scores(inputs: ArchInputs) -> list[float | ProxyUndefined]:
    """epe_nas of each of the B networks whose input gradients `inputs` holds, from the images' labels, in
    float64 on their device, with one copy to the host for all.

    Per class present: Σ log(|corr| + k) over the correlation matrix of its images' rows (a class of one
    image gives the matrix [[1]], as the reference's `np.corrcoef` gives 1.0), divided by the matrix's
    side where there are more than 100 classes; then the mean absolute difference over all pairs of
    classes (the sum, over 100 classes). A correlation involves its two rows only, so each class's matrix
    is its block of all the images' matrix: one matrix and one product sum every class's block (a
    constant row's NaN reaches other classes' sums too, but any NaN leaves the network without a value)."""
    corrs = inputs.input_correlations()
    _, of_image = torch.unique(inputs.labels.cpu(), return_inverse=True)
    member = F.one_hot(of_image).to(corrs)  # [N, classes present]
    logs = torch.log(corrs.abs() + K)  # [B, N, N]
    values = ((logs @ member) * member).sum(dim=1)  # [B, classes]: Σ over each class's block
    if inputs.num_classes > 100:
        values = values / member.sum(dim=0)  # the side of the class's matrix, √ of its size
    spread = (values[:, :, None] - values[:, None, :]).abs().sum(dim=(1, 2))
    if inputs.num_classes <= 100:
        spread = spread / values.shape[1]
    # Any class's non-finite value makes the spread non-finite, and a non-finite row makes its sum so.
    host = torch.stack([spread, inputs.row_spreads().sum(dim=1)]).cpu().tolist()
    return [
        value if math.isfinite(value) else ProxyUndefined(CONSTANT if math.isfinite(rows) else NOT_FINITE)
        for value, rows in zip(*host, strict=True)
    ]


@PROXIES.register("epe_nas", scope="arch", pass_name="data", needs=("input_grad",))
class EpeNas(Proxy):
    def standalone(self, net, batch, ctx):
        grads = input_jacobian(net, batch)[None]
        return value_or_raise(scores(ArchInputs(1, batch.labels, batch.num_classes, grads))[0])

    def extract(self, data):
        return value_or_raise(scores(data.archs())[0])

    def extract_archs(self, inputs):
        return scores(inputs)
