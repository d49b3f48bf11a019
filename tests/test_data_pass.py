"""The shared data pass: fisher where layers do not each run once (a layer called twice, one whose
output never reaches the loss, a batch split in micro-batches), and NASWOT's kernel counted exactly."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from zcpipe.workers.proxies import Batch
from zcpipe.workers.proxies.passes import run_data_pass


class _Twice(nn.Module):
    """conv_a runs twice, conv_b's output is dropped, the classifier is a Linear."""

    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.conv_b = nn.Conv2d(3, 4, 1, bias=False)
        self.head = nn.Linear(3, 5)

    def forward(self, x):
        self.conv_b(x)  # never reaches the loss: its output has no gradient
        h = self.conv_a(torch.relu(self.conv_a(x)))
        return self.head(h.mean((2, 3)))


def _fisher_by_hand(net, x, y, ranges) -> list[torch.Tensor]:
    """½·mean_n (Σ_spatial a ⊙ ∂L/∂a)² per channel, each call of a layer squared on its own, the loss of
    each micro-batch weighted by its share of the batch."""
    layers = [net.conv_a, net.conv_b, net.head]
    out = [torch.zeros(m.weight.shape[0], dtype=torch.float64) for m in layers]
    for s, e in ranges:
        calls: list[tuple[int, torch.Tensor]] = []
        handles = [
            m.register_forward_hook(lambda _m, _i, o, i=i, calls=calls: calls.append((i, o)))
            for i, m in enumerate(layers)
        ]
        try:
            loss = F.cross_entropy(net(x[s:e]), y[s:e]) * ((e - s) / x.shape[0])
        finally:
            for h in handles:
                h.remove()
        live = [(i, a) for i, a in calls if i != 1]
        grads = torch.autograd.grad(loss, [a for _, a in live])
        for (i, a), g in zip(live, grads, strict=True):
            prod = (a * g).detach()
            per = prod.sum((2, 3)) if prod.dim() == 4 else prod
            out[i] += per.double().pow(2).sum(0)
    return [0.5 * f / x.shape[0] for f in out]


@pytest.mark.parametrize("micro_batch", [None, 3])
def test_fisher_sums_each_call_and_leaves_a_layer_without_gradient_at_zero(micro_batch):
    torch.manual_seed(0)
    net = _Twice()
    x, y = torch.randn(8, 3, 6, 6), torch.randint(0, 5, (8,))
    layers = [net.conv_a, net.conv_b, net.head]
    data = run_data_pass(net, Batch(x, y, 5, "t"), layers, {"acts"}, micro_batch)
    ranges = [(0, 8)] if micro_batch is None else [(0, 3), (3, 6), (6, 8)]
    for got, want in zip(data.fisher, _fisher_by_hand(net, x, y, ranges), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=0.0)
    assert not data.fisher[1].any()  # conv_b: no gradient reaches its output
    assert data.fisher[0].abs().sum() > 0 and data.fisher[2].abs().sum() > 0


@pytest.mark.parametrize("micro_batch", [None, 3])
def test_naswot_kernel_counts_agreeing_codes_exactly(micro_batch):
    # The pass counts agreements as (s sᵀ + F)/2 with s = ±1; the definition is c cᵀ + (1 − c)(1 − c)ᵀ.
    # An all-zero input reaches the second ReLU for some images (x = 0 is "off", as in NASWOT).
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1), nn.ReLU(), nn.Flatten(), nn.LazyLinear(5))
    x = torch.randn(8, 3, 6, 6)
    x[:3] = 0.0
    net(x)
    by_hand = torch.zeros(8, 8, dtype=torch.float64)

    def hook(_m, inp, _out):
        c = (inp[0].detach().flatten(1) > 0).double()
        by_hand.add_(c @ c.t() + (1 - c) @ (1 - c).t())

    hooks = [m.register_forward_hook(hook) for m in net if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    data = run_data_pass(net, Batch(x, torch.zeros(8, dtype=torch.long), 5, "t"), [net[0]], {"relu_codes"}, micro_batch)
    assert np.array_equal(data.nwot_kernel, by_hand.numpy())
