"""The passes of the batched path: the shared data pass, synflow's and the weights', for B architectures.

Each gives the engine's `DataPass` over the *stacked* layers (one tensor per stacked layer, each
architecture's rows side by side), so the proxies' `elements` read it as they read one network's,
plus what whole-network proxies need per architecture (input gradients, NASWOT kernels).
The loss is the sum of the architectures' mean losses: its gradient with respect to architecture b's
weights is that of b's own loss, and so is every second derivative (the Hessian is block diagonal).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call

from zcpipe.workers.batched.network import BatchedNetwork
from zcpipe.workers.proxies.inputs import Batch, Need
from zcpipe.workers.proxies.passes import ArchInputs, DataPass, accumulate_fisher, gradient_inner
from zcpipe.workers.proxies.second_order import SecondOrderRules
from zcpipe.workers.proxies.synflow import absolute_float64


@dataclass
class BatchedPass:
    """A pass over B architectures: `stacked` for layer proxies, per-architecture parts for the rest."""

    stacked: DataPass
    input_grad: torch.Tensor | None = None  # [N, B, C, H, W]
    kernels: torch.Tensor | None = None  # [B, N, N] float64 NASWOT kernels

    def of_arch(self, b: int) -> DataPass:
        """Architecture b's whole-network inputs, for a proxy without `extract_archs`."""
        return DataPass(
            layers=[],
            weights=[],
            labels=self.stacked.labels,
            num_classes=self.stacked.num_classes,
            micro_batches=1,
            input_grad=None if self.input_grad is None else self.input_grad[:, b],
            nwot_kernel=None if self.kernels is None else self.kernels[b],
        )

    def archs(self, n_archs: int) -> ArchInputs:
        """Every architecture's whole-network inputs at once (what jacov, epe_nas and nwot read)."""
        grad = None if self.input_grad is None else self.input_grad.transpose(0, 1)
        return ArchInputs(n_archs, self.stacked.labels, self.stacked.num_classes, grad, self.kernels)


class _Recorder:
    """The forward's hooks: stacked layer outputs (fisher) and per-architecture NASWOT kernels."""

    def __init__(self, net: BatchedNetwork, n_images: int, acts: bool, codes: bool):
        self.acts: dict[int, torch.Tensor] = {}
        self.kernels = None
        self.n_archs = net.n_archs
        if codes:
            device = net.layout.layers[0].module.weight.device
            self.kernels = torch.zeros((net.n_archs, n_images, n_images), dtype=torch.float64, device=device)
        self.plus_minus: tuple[torch.Tensor, torch.Tensor] | None = None
        net.hooks.on_output = self._output if acts else None
        net.hooks.on_relu = self._relu if codes else None

    def _output(self, index: int, out: torch.Tensor) -> None:
        self.acts[index] = out

    def _relu(self, x: torch.Tensor, index: torch.Tensor | None) -> None:
        # NASWOT's binary codes of the ReLU's input, each architecture's channels its own code, as ±1:
        # `kernels` sums s sᵀ (exact integers), turned into agreement counts at the end (`naswot_kernels`).
        n = x.shape[0]
        groups = self.n_archs if index is None else len(index)
        if self.plus_minus is None:
            self.plus_minus = (torch.ones((), device=x.device), torch.full((), -1.0, device=x.device))
        s = torch.where(x.detach() > 0, *self.plus_minus).view(n, groups, -1).transpose(0, 1)
        k = torch.bmm(s, s.transpose(1, 2))
        if index is None:
            self.kernels.add_(k)
        else:
            self.kernels.index_add_(0, index, k.to(torch.float64))


def naswot_kernels(sign_sums: torch.Tensor) -> torch.Tensor:
    """[B, N, N] agreement counts from Σ s sᵀ over ReLUs: (S + F)/2, F the number of codes of the
    architecture, which is every diagonal entry of its S (each image agrees with itself everywhere)."""
    return (sign_sums + sign_sums.diagonal(dim1=1, dim2=2)[:, :1, None]) / 2


def _losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Σ_b of architecture b's mean cross-entropy; logits are [N, B, classes]."""
    per_image = F.cross_entropy(logits.permute(0, 2, 1), labels[:, None].expand(-1, logits.shape[1]), reduction="none")
    return per_image.mean(0).sum()


def run_data_pass(net: BatchedNetwork, batch: Batch, needs: set[Need]) -> BatchedPass:
    """The shared forward/backward for every architecture of `net` at once (the whole batch, no split)."""
    net.train()
    x, y = batch.images, batch.labels
    n = x.shape[0]
    layers = [layer.module for layer in net.layout.layers]
    weights = [m.weight for m in layers]
    want_grads = bool(needs & {"grads", "hvp"})
    want_hvp = "hvp" in needs
    rec = _Recorder(net, n, acts="acts" in needs, codes="relu_codes" in needs)
    out = DataPass(
        layers=layers, weights=[w.detach() for w in weights], labels=y, num_classes=batch.num_classes, micro_batches=1
    )
    result = BatchedPass(stacked=out)
    x_rep = x.repeat(1, net.n_archs, 1, 1)
    if "input_grad" in needs:
        x_rep.requires_grad_(True)
    rules = SecondOrderRules()
    try:
        with rules if want_hvp else contextlib.nullcontext():
            logits = net(x_rep)
        loss = _losses(logits, y)
        act_ids = sorted(rec.acts)
        targets = (weights if want_grads else []) + [rec.acts[i] for i in act_ids]
        g_w: list[torch.Tensor] = []
        if targets:
            g_all = torch.autograd.grad(loss, targets, create_graph=want_hvp, retain_graph=True, allow_unused=True)
            n_w = len(weights) if want_grads else 0
            g_w = [torch.zeros_like(w) if g is None else g for g, w in zip(g_all[:n_w], weights[:n_w], strict=True)]
            if want_grads:
                out.grads = [g.detach() for g in g_w]
            if act_ids:
                out.fisher = _fisher(net, act_ids, rec.acts, g_all[n_w:], n)
        if "input_grad" in needs:
            with rules.input_grads_only():
                (jg,) = torch.autograd.grad(logits.sum(), x_rep, retain_graph=want_hvp)
            result.input_grad = jg.detach().view(n, net.n_archs, -1, *x.shape[2:])
        if want_hvp:
            z = gradient_inner([g.detach() for g in g_w], g_w)
            with rules.second_derivative():
                hg = torch.autograd.grad(z, weights, allow_unused=True)
            out.hg = [torch.zeros_like(w) if h is None else h for h, w in zip(hg, weights, strict=True)]
    finally:
        net.hooks.on_output = net.hooks.on_relu = None
    if rec.kernels is not None:
        result.kernels = naswot_kernels(rec.kernels)
    return result


def _fisher(net: BatchedNetwork, ids: list[int], acts: dict, grads: tuple, n: int) -> list[torch.Tensor]:
    """Per output channel, 0.5/N Σ_n (Σ_hw a·∂L/∂a)², by the single engine's data pass's own sum (each
    stacked layer's output once: all its architectures' channels side by side)."""
    widths = [layer.module.weight.shape[0] for layer in net.layout.layers]
    per_layer: list[list[torch.Tensor]] = [[] for _ in widths]
    for i in ids:
        per_layer[i].append(acts[i])
    device = net.layout.layers[0].module.weight.device
    acc = accumulate_fisher(per_layer, list(grads), None, widths)
    if acc is None:  # no layer output reached the loss
        acc = torch.zeros(sum(widths), dtype=torch.float64, device=device)
    return list((0.5 * acc / n).split(widths))


def run_synflow_pass(net: BatchedNetwork, batch: Batch) -> DataPass:
    """synflow's pass over `net` with its weight layers' parameters replaced by |θ| in float64 for the
    call (`functional_call`; the network keeps its own, so the other passes need no second network),
    no BatchNorm, one input of ones: the gradient of the summed outputs of every architecture."""
    layers = [layer.module for layer in net.layout.layers]
    params = [p for m in layers for p in m.parameters(recurse=False)]
    absolute = absolute_float64(params)
    names = {id(p): name for name, p in net.named_parameters()}
    weights = [absolute[id(m.weight)] for m in layers]
    x = torch.ones((1, *batch.images.shape[1:]), dtype=torch.float64, device=batch.images.device)
    net.batchnorm = False
    try:
        out = functional_call(net, {names[id(p)]: absolute[id(p)] for p in params}, (x,))
    finally:
        net.batchnorm = True
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    return DataPass(
        layers=layers,
        weights=[w.detach() for w in weights],
        labels=batch.labels,
        num_classes=batch.num_classes,
        micro_batches=1,
        grads=[torch.zeros_like(w) if g is None else g for g, w in zip(grads, weights, strict=True)],
    )


def weights_pass(net: BatchedNetwork, batch: Batch) -> DataPass:
    """The stacked weights alone (l2_norm)."""
    layers = [layer.module for layer in net.layout.layers]
    return DataPass(
        layers=layers,
        weights=[m.weight.detach() for m in layers],
        labels=batch.labels,
        num_classes=batch.num_classes,
        micro_batches=1,
    )
