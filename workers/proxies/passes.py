"""The shared data pass: one forward/backward on the batch feeds every data-dependent proxy.

From a single forward it takes the weight gradients (snip, grad_norm, plain,
GraSP's g), the gradients at each layer's output (fisher), the input gradient of
the summed logits (jacov, epe_nas), the ReLU activation codes (nwot), and, from
the same graph kept differentiable, GraSP's Hessian-gradient product. That forward runs
under `SecondOrderRules`, whose written-out double backward makes Hg cheaper.

A batch that does not fit is split into micro-batches. Each micro-batch's loss is
weighted by its share of the batch, so gradients accumulate to the full-batch
mean-loss gradient; BatchNorm statistics are per micro-batch, as in zero-cost-nas.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from zcpipe.workers.proxies.correlation import correlations, row_spreads
from zcpipe.workers.proxies.inputs import Batch, Need
from zcpipe.workers.proxies.second_order import SecondOrderRules


@dataclass
class DataPass:
    layers: list[nn.Module]
    weights: list[torch.Tensor]
    labels: torch.Tensor
    num_classes: int
    micro_batches: int
    grads: list[torch.Tensor] | None = None
    fisher: list[torch.Tensor] | None = None  # per output channel, float64
    hg: list[torch.Tensor] | None = None
    input_grad: torch.Tensor | None = None
    nwot_kernel: torch.Tensor | None = None  # [N, N] float64; None: the network has no nn.ReLU
    _archs: ArchInputs | None = field(default=None, repr=False)

    def archs(self) -> ArchInputs:
        """This architecture's whole-network inputs as a stack of one, made once for every proxy that
        reads them (so jacov and epe_nas share one correlation matrix)."""
        if self._archs is None:
            grad = None if self.input_grad is None else self.input_grad[None]
            kernel = None if self.nwot_kernel is None else self.nwot_kernel[None]
            self._archs = ArchInputs(1, self.labels, self.num_classes, grad, kernel)
        return self._archs


@dataclass
class ArchInputs:
    """What the whole-network proxies read, for B architectures along a leading dimension, on their
    device: each one's per-image input gradients `[B, N, ...]` and NASWOT kernels `[B, N, N]` (float64;
    None: the networks have no nn.ReLU). One architecture's come from its data pass (`DataPass.archs`), a
    batched pass's from all of its architectures at once. What two proxies derive alike from the input
    gradients is computed once, on first use."""

    n_archs: int
    labels: torch.Tensor
    num_classes: int
    input_grad: torch.Tensor | None = None
    nwot_kernels: torch.Tensor | None = None
    _derived: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def input_correlations(self) -> torch.Tensor:
        """`np.corrcoef` of each architecture's per-image input-gradient rows, `[B, N, N]` float64."""
        if "correlations" not in self._derived:
            self._derived["correlations"] = correlations(self._rows().double())
        return self._derived["correlations"]

    def row_spreads(self) -> torch.Tensor:
        """Each image's input-gradient spread (`row_spreads`), `[B, N]` float64."""
        if "spreads" not in self._derived:
            self._derived["spreads"] = row_spreads(self._rows())
        return self._derived["spreads"]

    def _rows(self) -> torch.Tensor:
        # `[B, N, D]`: one copy where the gradients are a transposed view (a batched pass's), none otherwise.
        if "rows" not in self._derived:
            self._derived["rows"] = self.input_grad.flatten(2)
        return self._derived["rows"]


def micro_batches(n: int, size: int | None) -> list[tuple[int, int]]:
    if size is None or size >= n:
        return [(0, n)]
    return [(s, min(s + size, n)) for s in range(0, n, size)]


class _Recorder:
    """Forward hooks that keep layer outputs (fisher) and ReLU input codes (nwot) of one micro-batch."""

    def __init__(self, net: nn.Module, layers: list[nn.Module], acts: bool, codes: bool, keep_codes: bool):
        self.handles = []
        self.acts: list[list[torch.Tensor]] = [[] for _ in layers]
        self.sign_sum: torch.Tensor | None = None  # Σ over ReLUs of s sᵀ, s the ±1 codes (float64)
        self.plus_minus: tuple[torch.Tensor, torch.Tensor] | None = None
        self.codes: list[torch.Tensor] = []
        self.keep_codes = keep_codes
        if acts:
            for i, layer in enumerate(layers):
                self.handles.append(layer.register_forward_hook(self._act_hook(i)))
        if codes:
            for m in net.modules():
                if isinstance(m, nn.ReLU):
                    self.handles.append(m.register_forward_hook(self._code_hook))

    def _act_hook(self, i: int):
        def hook(_m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
            self.acts[i].append(out)

        return hook

    def _code_hook(self, _m: nn.Module, inp: tuple, _out: torch.Tensor) -> None:
        # NASWOT's binary code of the ReLU's input; relu(x) > 0 iff x > 0, so in-place ReLUs agree.
        x = inp[0].detach().flatten(1) > 0
        if self.keep_codes:
            self.codes.append(x)
            return
        if self.plus_minus is None:  # 0-d ±1 for `torch.where`: Python scalars would be lifted at every call
            self.plus_minus = (torch.ones((), device=x.device), torch.full((), -1.0, device=x.device))
        s = torch.where(x, *self.plus_minus)
        prod = s @ s.t()
        self.sign_sum = prod.to(torch.float64) if self.sign_sum is None else self.sign_sum.add_(prod)

    @property
    def kernel(self) -> torch.Tensor | None:
        """NASWOT's kernel over every ReLU so far: the number of codes on which two images agree,
        (S + F)/2 with F the number of codes, which is every diagonal entry of S."""
        return None if self.sign_sum is None else (self.sign_sum + self.sign_sum[0, 0]) / 2

    def reset(self) -> None:
        for a in self.acts:
            a.clear()
        self.codes = []

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _signs(codes: torch.Tensor) -> torch.Tensor:
    """Binary codes as ±1 in float32. With s = 2c − 1, c cᵀ + (1 − c)(1 − c)ᵀ, the number of agreeing
    codes (NASWOT's kernel), is (s sᵀ + F)/2 for F codes: one matrix product rather than two, and exact,
    as the counts are integers below 2²⁴ per ReLU and are summed over ReLUs in float64."""
    return torch.where(codes, 1.0, -1.0)


def _hamming_kernel(codes: torch.Tensor) -> torch.Tensor:
    s = _signs(codes)
    return (s @ s.t()).to(torch.float64).add_(codes.shape[1]).div_(2)


def _zeros_for_none(grads: tuple, like: list[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.zeros_like(w) if g is None else g for g, w in zip(grads, like, strict=True)]


def run_data_pass(
    net: nn.Module, batch: Batch, layers: list[nn.Module], needs: set[Need], micro_batch: int | None
) -> DataPass:
    net.train()
    x, y = batch.images, batch.labels
    n = x.shape[0]
    ranges = micro_batches(n, micro_batch)
    single = len(ranges) == 1
    weights = [layer.weight for layer in layers]
    out = DataPass(
        layers=layers,
        weights=[w.detach() for w in weights],
        labels=y,
        num_classes=batch.num_classes,
        micro_batches=len(ranges),
    )
    want_grads = bool(needs & {"grads", "hvp"})
    want_hvp = "hvp" in needs
    rec = _Recorder(net, layers, acts="acts" in needs, codes="relu_codes" in needs, keep_codes=not single)
    widths = [w.shape[0] for w in weights]
    # Sums over micro-batches; the first micro-batch's values are taken as they are, not added to zeros.
    grad_acc: list[torch.Tensor] | None = None
    fisher_acc: torch.Tensor | None = None  # every layer's channels in one float64 row
    input_grads: list[torch.Tensor] = []
    code_parts: list[list[torch.Tensor]] = []
    try:
        for s, e in ranges:
            rec.reset()
            xs = x[s:e].clone().requires_grad_(True) if "input_grad" in needs else x[s:e]
            graph_for_hvp = want_hvp and single
            rules = SecondOrderRules()
            with rules if graph_for_hvp else contextlib.nullcontext():
                logits = net(xs)
            loss = F.cross_entropy(logits, y[s:e]) * ((e - s) / n)
            flat_acts = [a for per_layer in rec.acts for a in per_layer]
            targets = (weights if want_grads else []) + flat_acts
            if targets:
                g_all = torch.autograd.grad(
                    loss, targets, create_graph=graph_for_hvp, retain_graph=True, allow_unused=True
                )
                g_w = _zeros_for_none(g_all[: len(weights)], weights) if want_grads else []
                g_acts = list(g_all[len(g_w) :])
                if want_grads:
                    g_det = [g.detach() for g in g_w]
                    if grad_acc is None:
                        grad_acc = g_det
                    else:
                        torch._foreach_add_(grad_acc, g_det)
                if flat_acts:
                    fisher_acc = accumulate_fisher(rec.acts, g_acts, fisher_acc, widths)
            if "input_grad" in needs:
                with rules.input_grads_only():
                    (jg,) = torch.autograd.grad(logits.sum(), xs, retain_graph=graph_for_hvp)
                input_grads.append(jg.detach())
            if graph_for_hvp:
                z = gradient_inner([g.detach() for g in g_w], g_w)
                with rules.second_derivative():
                    hg = torch.autograd.grad(z, weights, allow_unused=True)
                out.hg = _zeros_for_none(hg, weights)
            if not single and rec.codes:
                code_parts.append(rec.codes)
            del logits, loss
        if want_hvp and not single:
            out.hg = _split_hvp(net, x, y, ranges, weights, grad_acc)
    finally:
        rec.close()
    if grad_acc is not None:
        out.grads = grad_acc
    if "acts" in needs:
        if fisher_acc is None:  # no layer output reached the loss
            fisher_acc = torch.zeros(sum(widths), dtype=torch.float64, device=x.device)
        out.fisher = list((0.5 * fisher_acc / n).split(widths))
    if input_grads:
        out.input_grad = torch.cat(input_grads)
    if "relu_codes" in needs:
        out.nwot_kernel = _kernel(rec.kernel if single else None, code_parts)
    return out


def gradient_inner(fixed: list[torch.Tensor], grads: list[torch.Tensor]) -> torch.Tensor:
    """GraSP's z: Σ_l <fixed_l, grads_l> over the gradients still in the graph, as one dot product of two
    concatenations: its derivative with respect to each grads_l is fixed_l, exactly, as GraSP's
    Σ_l (fixed_l ⊙ grads_l).sum() gives it, in four kernels rather than four per layer."""
    live = [i for i, g in enumerate(grads) if g.requires_grad]
    flat = torch.cat([grads[i].reshape(-1) for i in live])
    return torch.dot(torch.cat([fixed[i].reshape(-1) for i in live]), flat)


def accumulate_fisher(
    acts: list[list[torch.Tensor]], g_acts: list, acc: torch.Tensor | None, widths: list[int]
) -> torch.Tensor | None:
    """`acc` plus this micro-batch's Σ_n (Σ_spatial a ⊙ ∂L/∂a)² per output channel of every layer, in
    float64, with all layers' channels in one row: one squaring and one sum for every layer."""
    owners, a_live, g_live = [], [], []
    calls = [(i, a) for i, per_layer in enumerate(acts) for a in per_layer]  # g_acts' order
    for (i, a), g in zip(calls, g_acts, strict=True):
        if g is not None:
            owners.append(i)
            a_live.append(a.detach())
            g_live.append(g.detach())
    if not owners:
        return acc
    prods = torch._foreach_mul(a_live, g_live)
    rows = [p.sum(dim=tuple(range(2, p.dim()))) if p.dim() > 2 else p for p in prods]  # (n, C) each
    squares = torch.cat(rows, dim=1).to(torch.float64).pow_(2).sum(0)
    if owners == list(range(len(widths))):  # each layer ran once: the row is already in layer order
        return squares if acc is None else acc.add_(squares)
    acc = squares.new_zeros(sum(widths)) if acc is None else acc
    starts = np.cumsum([0, *widths]).tolist()
    for i, piece in zip(owners, squares.split([r.shape[1] for r in rows]), strict=True):
        acc[starts[i] : starts[i + 1]].add_(piece)
    return acc


def _split_hvp(net, x, y, ranges, weights, g_full) -> list[torch.Tensor]:
    # Hg = Σ_micro-batches H_c g with the full-batch g, so GraSP needs g from the first sweep.
    n = x.shape[0]
    hg = [torch.zeros_like(w) for w in weights]
    for s, e in ranges:
        rules = SecondOrderRules()
        with rules:
            logits = net(x[s:e])
        loss = F.cross_entropy(logits, y[s:e]) * ((e - s) / n)
        g_c = _zeros_for_none(torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True), weights)
        z = gradient_inner(g_full, g_c)
        with rules.second_derivative():
            h_c = torch.autograd.grad(z, weights, allow_unused=True)
        for acc, h in zip(hg, h_c, strict=True):
            if h is not None:
                acc += h
    return hg


def _kernel(single_kernel: torch.Tensor | None, code_parts: list[list[torch.Tensor]]) -> torch.Tensor | None:
    if single_kernel is not None:
        return single_kernel
    if not code_parts or not code_parts[0]:
        return None  # no nn.ReLU ran: nwot is undefined for this network
    total = None
    for call in range(len(code_parts[0])):
        k = _hamming_kernel(torch.cat([part[call] for part in code_parts]))
        total = k if total is None else total + k
    return total
