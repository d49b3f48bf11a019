"""The written-out double backward of Conv2d and BatchNorm against finite differences and PyTorch's own."""

import contextlib
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck

from zcpipe.workers.proxies.common import layers_of
from zcpipe.workers.proxies.second_order import SecondOrderRules
from zcpipe.workers.spaces import BuildOptions, get_space


def _double(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "padding", "dilation", "groups", "bias"),
    [
        (3, 4, 3, 1, 1, 1, 1, True),
        (4, 4, 3, 2, 1, 1, 1, False),
        (4, 4, 3, 1, 2, 2, 4, False),  # depthwise, dilated: NDS sep/dil convs
        (4, 6, 1, 1, 0, 1, 2, True),
    ],
)
def test_conv_second_derivatives_match_finite_differences(cin, cout, k, stride, padding, dilation, groups, bias):
    torch.manual_seed(0)
    x, w = _double(2, cin, 7, 7), _double(cout, cin // groups, k, k)
    b = _double(cout) if bias else None

    def f(x, w, *b):
        with SecondOrderRules():
            return F.conv2d(x, w, b[0] if b else None, stride, padding, dilation, groups)

    inputs = (x, w, b) if bias else (x, w)
    assert gradcheck(f, inputs)
    assert gradgradcheck(f, inputs)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(5, 3, 4, 4), (6, 4)])
def test_batchnorm_second_derivatives_match_finite_differences(affine, shape):
    torch.manual_seed(0)
    x = _double(*shape)
    params = (_double(shape[1]), _double(shape[1])) if affine else ()

    def f(x, *wb):
        with SecondOrderRules():
            return F.batch_norm(x, None, None, *(wb or (None, None)), training=True, eps=1e-3)

    assert gradcheck(f, (x, *params))
    assert gradgradcheck(f, (x, *params))


@pytest.mark.parametrize("used", ["x", "gamma", "beta", "gamma+beta"])
def test_batchnorm_second_derivatives_from_some_first_derivatives_equal_pytorchs(used):
    # Autograd hands the rule None for a first derivative that the second pass does not use (GraSP
    # never reaches ∂γ or ∂β); each combination must still give PyTorch's own double backward.
    torch.manual_seed(0)
    x, w, b, r = _double(5, 3, 4, 4), _double(3), _double(3), torch.randn(5, 3, 4, 4, dtype=torch.float64)
    picked = {"x": [0], "gamma": [1], "beta": [2], "gamma+beta": [1, 2]}[used]

    def second(rules: bool):
        with SecondOrderRules() if rules else contextlib.nullcontext():
            y = F.batch_norm(x, None, None, w, b, training=True)
        firsts = torch.autograd.grad((y * r).sum(), (x, w, b), create_graph=True)
        z = sum((firsts[i] * torch.cos(firsts[i].detach())).sum() for i in picked)
        return torch.autograd.grad(z, (x, w, b), allow_unused=True)

    for ours, ref in zip(second(True), second(False), strict=True):
        if ref is None or not ref.abs().max() > 0:
            assert ours is None or not ours.abs().max() > 1e-12
        else:
            torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


def test_relu_rule_gives_pytorchs_first_derivative_and_its_second():
    torch.manual_seed(0)
    x = _double(3, 4, 5, 5)
    r = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    rules = SecondOrderRules()

    def f(x):
        with rules:
            return F.relu(x)

    (ours,) = torch.autograd.grad((f(x) * r).sum(), x)
    (ref,) = torch.autograd.grad((F.relu(x) * r).sum(), x)
    assert torch.equal(ours, ref)
    assert gradcheck(f, (x,))
    assert gradgradcheck(f, (x,))
    with rules:  # in place, as nn.ReLU(inplace=True) asks: PyTorch's own op, not the rule
        assert torch.equal(F.relu(x.detach().clone(), inplace=True), F.relu(x.detach()))


def test_batchnorm_running_statistics_update_as_in_pytorch():
    torch.manual_seed(0)
    ours, ref = nn.BatchNorm2d(3), nn.BatchNorm2d(3)
    x = torch.randn(4, 3, 5, 5)
    with SecondOrderRules():
        y = ours(x)
    assert torch.equal(y, ref(x))
    assert torch.equal(ours.running_mean, ref.running_mean)
    assert torch.equal(ours.running_var, ref.running_var)


def _hvp(net, x, y, rules: bool):
    weights = [layer.weight for layer in layers_of(net)]
    mode = SecondOrderRules()
    with mode if rules else contextlib.nullcontext():
        logits = net(x)
    g = torch.autograd.grad(F.cross_entropy(logits, y), weights, create_graph=True)
    z = sum((gi.detach() * gi).sum() for gi in g)
    with mode.second_derivative():
        return [t.detach() for t in g], torch.autograd.grad(z, weights)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize(("k", "stride", "padding"), [(3, 1, 1), (5, 1, 2), (3, None, 0), (2, 2, 0)])
def test_avg_pool_derivatives_in_both_passes(k, stride, padding, count_include_pad):
    torch.manual_seed(0)
    x = _double(2, 3, 6, 7)
    rules = SecondOrderRules()

    def f(x):
        with rules:
            return F.avg_pool2d(x, k, stride, padding, count_include_pad=count_include_pad)

    assert torch.equal(f(x), F.avg_pool2d(x, k, stride, padding, count_include_pad=count_include_pad))
    assert gradgradcheck(f, (x,))
    with rules.second_derivative():  # the box-sum backward used while Hg is taken
        assert gradcheck(f, (x,))


@pytest.mark.parametrize(
    ("space", "arch"),
    [
        ("nb201", "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"),
        ("nds-darts", None),
    ],
)
def test_hessian_gradient_product_equals_pytorch_double_backward_in_float64(space, arch, cifar_batch):
    sp = get_space(space) if space == "nb201" else get_space(space, width=8, depth=3)
    arch = arch or sp.sample(1, 3)[0]
    torch.manual_seed(2)
    net = sp.build(arch, BuildOptions()).double().train()
    x, y = cifar_batch.images[:8].double(), cifar_batch.labels[:8]
    g_ref, hg_ref = _hvp(copy.deepcopy(net), x, y, rules=False)
    g, hg = _hvp(net, x, y, rules=True)
    for a, b in zip(g, g_ref, strict=True):
        assert torch.equal(a, b)  # first derivatives: the same aten kernels
    for a, b in zip(hg, hg_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12 * float(b.abs().max()))
