"""epe_nas: spread of the per-class Jacobian-correlation scores (Lopes et al. 2021;
NAS-Bench-Suite-Zero `epe_nas`, whose per-class scoring this follows)."""

import torch

from zcpipe.workers.proxies.base import Proxy, ProxyUndefined, value_or_raise
from zcpipe.workers.proxies.common import correlations, input_jacobian, row_ranges
from zcpipe.workers.proxies.passes import ArchInputs
from zcpipe.workers.proxies.registry import PROXIES

K = 1e-5
CONSTANT = "a class's jacobian rows are constant: the output does not depend on the input"
NOT_FINITE = "the input gradients are not finite (the network's output overflows)"


def scores(jacobians: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float | ProxyUndefined]:
    """epe_nas of each of B networks from its per-image input gradients (`[B, N, ...]`) and the images'
    `labels`, in float64 on their device, with one copy to the host for all.

    Per class present: Σ log(|corr| + k) over the correlation matrix of its images' rows (a class of one
    image gives the matrix [[1]], as the reference's `np.corrcoef` gives 1.0), divided by the matrix's
    side where there are more than 100 classes; then the mean absolute difference over all pairs of
    classes (the sum, over 100 classes)."""
    rows = jacobians.flatten(2).double()
    on_host = labels.cpu()
    per_class = []
    for c in torch.unique(on_host).tolist():
        members = (on_host == c).nonzero().flatten().to(rows.device)
        corrs = correlations(rows[:, members])
        s = torch.log(corrs.abs() + K).sum(dim=(1, 2))
        if num_classes > 100:
            s = s / float(corrs[0].numel()) ** 0.5
        per_class.append(s)
    values = torch.stack(per_class, dim=1)  # [B, classes]
    spread = (values[:, :, None] - values[:, None, :]).abs().sum(dim=(1, 2))
    if num_classes <= 100:
        spread = spread / values.shape[1]
    low, high = row_ranges(jacobians)
    finite_rows = (torch.isfinite(low) & torch.isfinite(high)).all(dim=1)
    host = torch.stack([spread, torch.isfinite(values).all(dim=1).double(), finite_rows.double()]).cpu().tolist()
    return [
        value if finite else ProxyUndefined(CONSTANT if rows_finite else NOT_FINITE)
        for value, finite, rows_finite in zip(*host, strict=True)
    ]


@PROXIES.register("epe_nas", scope="arch", pass_name="data", needs=("input_grad",))
class EpeNas(Proxy):
    def standalone(self, net, batch, ctx):
        return value_or_raise(scores(input_jacobian(net, batch)[None], batch.labels, batch.num_classes)[0])

    def extract(self, data):
        return value_or_raise(self.extract_archs(ArchInputs.of(data))[0])

    def extract_archs(self, inputs):
        return scores(inputs.input_grad, inputs.labels, inputs.num_classes)
