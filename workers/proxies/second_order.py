"""Cheaper second derivatives for Conv2d, training-mode BatchNorm, pooling and ReLU, for GraSP's Hg.

GraSP differentiates the weight gradient once more (a double backward). PyTorch's
built-in double backward of a convolution computes the weight term as a convolution
of batch-transposed tensors, and that of BatchNorm spends about thirty full-size
elementwise passes. Here the first backward of each layer is the same aten kernel
autograd uses (so first derivatives are bit-identical), and its derivative is
written out:

- convolution: every term is one forward convolution or one `convolution_backward`
  call, the kernels that are tuned;
- BatchNorm: the derivative reduces to four per-channel sums (taken by the fused
  `native_batch_norm_backward` kernel), a few kernels on stacked per-channel rows, and
  five fused multiply-add passes over the full tensors;
- stride-1 average pooling: box sums of shifted slices;
- ReLU: PyTorch's own kernel, without the derivative of its mask (zero).

On a GPU the small per-channel kernels, not the full-size passes, are most of the
launches, so each rule is written to launch few of them (bench/README.md counts them).

`SecondOrderRules` is a `TorchFunctionMode`: inside `with SecondOrderRules():` the
forward's `F.conv2d`, `F.avg_pool2d`, `F.relu` and training-mode `F.batch_norm` calls
record these functions;
the model and its modules are left untouched. The values equal PyTorch's double
backward exactly in exact arithmetic; `tests/test_second_order.py` checks them with
`gradgradcheck` and against the native double backward in float64.
"""

from __future__ import annotations

import contextlib
import functools
import operator
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

aten = torch.ops.aten

_CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_CONV_DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}
_BN_ARGS = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
_BN_DEFAULTS = {"weight": None, "bias": None, "training": False, "momentum": 0.1, "eps": 1e-5}
_POOL_ARGS = ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
_POOL_DEFAULTS = {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None}


class SecondOrderRules(TorchFunctionMode):
    """Routes Conv2d, training BatchNorm, stride-1 average pooling and ReLU through functions whose
    second derivative is written out; everything else runs as usual."""

    def __init__(self) -> None:
        super().__init__()
        # False while a backward only wants input gradients (jacov's): autograd cannot tell a
        # custom function which of its inputs the current backward needs.
        self.weight_grads = True
        # True while the second derivative is taken. First derivatives use PyTorch's kernels so
        # they stay bit-identical to the oracle's; inside the second pass they only feed Hg.
        self.second_pass = False

    def second_derivative(self) -> contextlib.AbstractContextManager[None]:
        return self._setting("second_pass", True)

    def input_grads_only(self) -> contextlib.AbstractContextManager[None]:
        return self._setting("weight_grads", False)

    @contextlib.contextmanager
    def _setting(self, name: str, value: bool) -> Iterator[None]:
        old = getattr(self, name)
        setattr(self, name, value)
        try:
            yield
        finally:
            setattr(self, name, old)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.conv2d:
            a = _bind(_CONV_ARGS, _CONV_DEFAULTS, args, kwargs)
            if not isinstance(a["padding"], str) and a["input"].dim() == 4:
                return _Conv2d.apply(
                    a["input"],
                    a["weight"],
                    a["bias"],
                    (_pair(a["stride"]), _pair(a["padding"]), _pair(a["dilation"]), a["groups"]),
                    self,
                )
        elif func is F.avg_pool2d:
            a = _bind(_POOL_ARGS, _POOL_DEFAULTS, args, kwargs)
            box = _BoxPool.of(a)
            if box is not None:
                return _AvgPool2d.apply(a["input"], box, self)
        elif func is F.relu:
            a = _bind(("input", "inplace"), {"inplace": False}, args, kwargs)
            if not a["inplace"]:
                return _ReLU.apply(a["input"])
        elif func is F.batch_norm:
            a = _bind(_BN_ARGS, _BN_DEFAULTS, args, kwargs)
            if a["training"]:
                return _BatchNorm.apply(
                    a["input"], a["weight"], a["bias"], a["running_mean"], a["running_var"], a["momentum"], a["eps"]
                )
        return func(*args, **kwargs)


def _bind(names: tuple[str, ...], defaults: dict, args: tuple, kwargs: dict) -> dict:
    bound = dict(defaults)
    bound.update(zip(names, args, strict=False))  # trailing arguments may be defaulted
    bound.update(kwargs)
    return bound


def _pair(v) -> list[int]:
    return [int(x) for x in v] if isinstance(v, (tuple, list)) else [int(v), int(v)]


# ---------------------------------------------------------------- convolution


class _Conv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, params, rules):
        stride, padding, dilation, groups = params
        ctx.save_for_backward(x, w)
        ctx.params, ctx.rules, ctx.has_bias = params, rules, b is not None
        return F.conv2d(x, w, b, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, g_out):
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        mask = [need[0], need[1] and ctx.rules.weight_grads, need[2] and ctx.rules.weight_grads]
        gx, gw, gb = _Conv2dBackward.apply(g_out, x, w, ctx.has_bias, ctx.params, mask)
        return gx, gw, gb, None, None


class _Conv2dBackward(torch.autograd.Function):
    """(∂x, ∂w, ∂b) of a convolution; its backward is the derivative of that map."""

    @staticmethod
    def forward(ctx, g_out, x, w, has_bias, params, mask):
        stride, padding, dilation, groups = params
        ctx.save_for_backward(g_out, x, w)
        ctx.params = params
        bias_sizes = [w.shape[0]] if has_bias else None
        return aten.convolution_backward(
            g_out, x, w, bias_sizes, stride, padding, dilation, False, [0, 0], groups, mask
        )

    @staticmethod
    def backward(ctx, gg_x, gg_w, gg_b):
        # ∂x = conv(·, w)ᵀ g_out and ∂w = corr(g_out, x) are bilinear, so
        # d<gg_x, ∂x>/dw = corr(g_out, gg_x), d<gg_w, ∂w>/dx = conv(·, gg_w)ᵀ g_out,
        # and d/dg_out = conv(gg_x, w) + conv(x, gg_w) + gg_b.
        g_out, x, w = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.params
        need_g, need_x, need_w = ctx.needs_input_grad[:3]

        def conv_grads(out_grad, inp, weight, which):
            return aten.convolution_backward(
                out_grad, inp, weight, None, stride, padding, dilation, False, [0, 0], groups, which
            )

        d_g = d_x = d_w = None
        if need_g:
            if gg_x is not None:
                d_g = F.conv2d(gg_x, w, None, stride, padding, dilation, groups)
            if gg_w is not None:
                term = F.conv2d(x, gg_w, None, stride, padding, dilation, groups)
                d_g = term if d_g is None else d_g.add_(term)
            if gg_b is not None:
                term = gg_b.view(1, -1, 1, 1)
                d_g = term.expand_as(g_out).clone() if d_g is None else d_g.add_(term)
        if need_x and gg_w is not None:
            d_x = conv_grads(g_out, x, gg_w, [True, False, False])[0]
        if need_w and gg_x is not None:
            d_w = conv_grads(g_out, gg_x, w, [False, True, False])[1]
        return d_g, d_x, d_w, None, None, None


# ---------------------------------------------------------------- average pooling


class _BoxPool:
    """A stride-1 average pool with 'same' padding: y = c ⊙ B x, B the (symmetric) box sum.

    PyTorch's NCHW average-pool kernels take ~10 ms for one NB201 feature map on one thread;
    the box sum as shifted slice additions takes ~2 ms. Since B is symmetric, the backward
    B(c ⊙ g) and the double backward c ⊙ B(gg) are box sums too. Used in the second pass only.
    """

    def __init__(self, k: int, count_include_pad: bool):
        self.k, self.count_include_pad = k, count_include_pad

    def __eq__(self, other: object) -> bool:  # a cache key (`_reciprocal_counts`): equal boxes, equal counts
        return isinstance(other, _BoxPool) and (self.k, self.count_include_pad) == (other.k, other.count_include_pad)

    def __hash__(self) -> int:
        return hash((self.k, self.count_include_pad))

    @classmethod
    def of(cls, a: dict) -> _BoxPool | None:
        k, stride, pad = a["kernel_size"], a["stride"], a["padding"]
        k, stride, pad = (_pair(v) if v is not None else None for v in (k, stride, pad))
        if a["input"].dim() != 4 or a["ceil_mode"] or a["divisor_override"] is not None:
            return None
        # A missing stride means stride = kernel size, so only an explicit 1 qualifies.
        if k[0] != k[1] or k[0] % 2 == 0 or stride != [1, 1] or pad != [k[0] // 2] * 2:
            return None
        return cls(k[0], bool(a["count_include_pad"]))

    def params(self) -> tuple:
        k, p = [self.k] * 2, [self.k // 2] * 2
        return k, [1, 1], p, False, self.count_include_pad, None

    def box_sum(self, x: torch.Tensor) -> torch.Tensor:
        if self.k == 1:
            return x.clone()  # a new tensor, as for every k: `pool` scales it in place
        r, (h, w) = self.k // 2, x.shape[-2:]
        p = F.pad(x, (r, r, r, r))
        rows = functools.reduce(operator.add, (p[..., :, i : i + w] for i in range(self.k)))
        return functools.reduce(operator.add, (rows[..., i : i + h, :] for i in range(self.k)))

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        if self.count_include_pad:
            return torch.full((), 1.0 / self.k**2, dtype=x.dtype, device=x.device)
        return _reciprocal_counts(self, *x.shape[-2:], x.dtype, x.device)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return self.box_sum(x).mul_(self.scale(x))

    def pool_backward(self, g: torch.Tensor) -> torch.Tensor:
        return self.box_sum(g * self.scale(g))


@functools.lru_cache(maxsize=64)
def _reciprocal_counts(box: _BoxPool, h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1 / (the number of cells of each window inside the map), for a pool without padded cells: a
    constant of the map's shape, built once rather than by a box sum of ones at every call."""
    with torch.inference_mode(False), torch.no_grad():  # a constant that any later graph may save
        return box.box_sum(torch.ones((1, 1, h, w), dtype=dtype, device=device)).reciprocal_()


class _AvgPool2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, box, rules):
        ctx.save_for_backward(x)
        ctx.box, ctx.rules = box, rules
        return F.avg_pool2d(x, *box.params())

    @staticmethod
    def backward(ctx, g_out):
        (x,) = ctx.saved_tensors
        if ctx.rules.second_pass:
            return ctx.box.pool_backward(g_out), None, None
        return _AvgPool2dBackward.apply(g_out, x, ctx.box), None, None


class _AvgPool2dBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, g_out, x, box):
        ctx.box = box
        return aten.avg_pool2d_backward(g_out, x, *box.params())

    @staticmethod
    def backward(ctx, gg_x):
        return ctx.box.pool(gg_x), None, None


# ---------------------------------------------------------------- relu


class _ReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.relu(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g_out):
        (y,) = ctx.saved_tensors
        return _ReLUBackward.apply(g_out, y)


class _ReLUBackward(torch.autograd.Function):
    """relu's backward, PyTorch's kernel. PyTorch's own double backward of it also differentiates with
    respect to the mask's input, which is zero almost everywhere: a zero tensor per ReLU, then added
    into that input's gradient. Here that term is left out (the mask is constant where it is defined)."""

    @staticmethod
    def forward(ctx, g_out, y):
        ctx.save_for_backward(y)
        return aten.threshold_backward(g_out, y, 0)

    @staticmethod
    def backward(ctx, gg):
        (y,) = ctx.saved_tensors
        return aten.threshold_backward(gg, y, 0), None


# ---------------------------------------------------------------- batch norm


class _BatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, running_mean, running_var, momentum, eps):
        out, mean, invstd = aten.native_batch_norm(x, w, b, running_mean, running_var, True, momentum, eps)
        ctx.save_for_backward(x, w, mean, invstd)
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx, g_out):
        x, w, mean, invstd = ctx.saved_tensors
        gx, gw, gb = _BatchNormBackward.apply(g_out, x, w, mean, invstd, ctx.eps)
        return gx, gw, gb, None, None, None, None


class _BatchNormBackward(torch.autograd.Function):
    """(∂x, ∂γ, ∂β) of training-mode BatchNorm; its backward is the derivative of that map.

    With x̂ = (x − μ)s, s = (σ² + eps)^-½, M elements per channel and
    P(u) = u − mean(u) − x̂·mean(u x̂), the first backward is ∂x = γ s P(g), ∂γ = Σ g x̂,
    ∂β = Σ g. For cotangents (a, a_γ, a_β) on those, with sums S1 = Σ a, S2 = Σ a g,
    Sx = Σ a x̂ and Q = S2 − mean(g) S1 − mean(g x̂) Sx:
        d/dg = γ s P(a) + a_γ x̂ + a_β
        d/dx = −γ s² [x̂ Q / M + mean(g x̂) P(a) + Sx/M · P(g)] + a_γ s P(g)
        d/dγ = s Q
    Every full-size term is c1·x + c2·a + c3·g + c4 with per-channel c's.
    """

    @staticmethod
    def forward(ctx, g_out, x, w, mean, invstd, eps):
        # A BatchNorm without affine parameters is one with γ = 1; the kernel is handed that γ
        # explicitly, because CUDA's allocates ∂γ and ∂β from the weight's options.
        gamma = w if w is not None else _unit_rows(mean.numel(), mean.dtype, mean.device)[1]
        gx, gw, gb = aten.native_batch_norm_backward(
            g_out, x, gamma, None, None, mean, invstd, True, eps, [True, True, True]
        )
        ctx.save_for_backward(g_out, x, w, mean, invstd, gw, gb)
        # A cotangent that autograd has no use for stays None instead of a tensor of zeros:
        # GraSP's Hg never reaches ∂γ or ∂β, and each zero term would cost several kernels.
        ctx.set_materialize_grads(False)
        affine = w is not None
        return gx, gw if affine else None, gb if affine else None

    @staticmethod
    def backward(ctx, a, a_gamma, a_beta):
        g, x, w, mean, invstd, sum_gxh, sum_g = ctx.saved_tensors
        s, m = invstd, x.numel() // x.shape[1]
        zero, one = _unit_rows(s.numel(), s.dtype, s.device)
        # The per-channel algebra works on stacked rows, so each step is one kernel for every
        # coefficient: these small kernels, not the full-size passes, are most of the launches.
        # Rows of `c`: the coefficients of 1, x̂, a and g in d/dx, then of x̂ and 1 in d/dg.
        neg_means = torch.stack([sum_g, sum_gxh]).div_(-m)  # −mean(g), −mean(g x̂)
        if a is not None:
            s_ax, s_a = _channel_sums(a, x, one if w is None else w, mean, invstd, [False, True, True])  # Σ a x̂, Σ a
            s_ag = _channel_sums(a, g, one, zero, one, [False, True, False])[0]  # Σ a g
            # Rows: −mean(g)·[Σa, Σax̂], then −mean(g x̂)·[Σa, Σax̂].
            prods = (neg_means[:, None] * torch.stack([s_a, s_ax])[None]).view(4, -1)
            q = s_ag + prods[0::3].sum(0)  # Q = Σag − mean(g) Σa − mean(gx̂) Σax̂
            c = torch.stack([prods[1:3].sum(0), q.add(prods[3], alpha=2.0), sum_gxh, s_ax, s_ax, s_a])
            k = torch.addcmul(zero, one if w is None else w, s, value=-1.0 / m)  # −γ s / M
            # Rows 0-3 × (−γ s² / M), rows 4-5 × (−γ s / M). mul_ on the view: `*=` would copy it back too.
            c[:4].mul_(s)
            c.mul_(k)
        else:
            c = s.new_zeros((6, s.numel()))
        if a_gamma is not None:
            a_gamma_s = a_gamma * s
            c[:2].addcmul_(neg_means, a_gamma_s)
            c[3].add_(a_gamma_s)
            c[4].add_(a_gamma)
        if a_beta is not None:
            c[5].add_(a_beta)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        # c_x̂·x̂ + c_1 = (c_x̂ s)·x + (c_1 − c_x̂ s μ), for d/dx and d/dg at once.
        scales = c[1::3] * s
        shifts = torch.addcmul(c[0::5], scales, mean, value=-1.0)

        def affine_of_x(i: int) -> torch.Tensor:
            return torch.addcmul(shifts[i].view(shape), x, scales[i].view(shape))

        d_g = d_x = d_w = None
        if ctx.needs_input_grad[0]:
            d_g = affine_of_x(1)
            if a is not None:
                d_g.addcmul_(a, k.view(shape), value=-m)  # + γ s a
        if ctx.needs_input_grad[1]:
            d_x = affine_of_x(0).addcmul_(g, c[3].view(shape))
            if a is not None:
                d_x.addcmul_(a, c[2].view(shape))
        if a is not None and ctx.needs_input_grad[2]:
            d_w = s * q
        return d_g, d_x, d_w, None, None, None


def _channel_sums(a, x, w, mean, invstd, mask: list[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ a·(x − mean)·invstd, Σ a) per channel (those `mask` asks for), by the fused BatchNorm
    backward kernel.

    Its grad_weight and grad_bias are these sums whatever γ is; γ must still be a tensor, because
    the CUDA kernel allocates both from its options (`at::empty({C}, weight.options())`)."""
    _, s_x, s_1 = aten.native_batch_norm_backward(a, x, w, None, None, mean, invstd, True, 0.0, mask)
    return s_x, s_1


@functools.lru_cache(maxsize=64)
def _unit_rows(c: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Zeros and ones of one channel count, the mean and scale that make the fused kernel sum a plain
    product: constants (no kernel reads them to write), built once rather than twice per BatchNorm."""
    with torch.inference_mode(False), torch.no_grad():
        return torch.zeros(c, dtype=dtype, device=device), torch.ones(c, dtype=dtype, device=device)
