"""MeCo, SWAP and ZiCo (the proxies of 2023-24), each against a numpy computation of the reference
implementation's definition that shares none of the engine's code, and on real NB201 cells."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from tests.tiny import TinyNet, tiny_batch
from zcpipe.workers.engine import ProxyEngine
from zcpipe.workers.proxies import get_proxies


def _engine(net, batch, names, seed=5):
    stats = ProxyEngine(get_proxies(list(names))).compute(net, batch, generator_seed=seed)
    return stats, {n: [layer.values.get(n) for layer in stats.layers] for n in names}


def test_meco_is_the_smallest_eigenvalue_of_each_maps_channel_correlation():
    torch.manual_seed(0)
    net, batch = TinyNet(bn=True), tiny_batch()
    stats, v = _engine(net, batch, ["meco"], seed=5)
    # The same random image (the reference's 1×3×64×64), the outputs of the weight layers, numpy's algebra.
    x = torch.randn((1, 3, 64, 64), generator=torch.Generator().manual_seed(5))
    outs = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outs.append(o[0].detach().double().numpy()))
             for m in (net.c1, net.c2, net.fc)]  # fmt: skip
    net.train()
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    expected = []
    for fea in outs[:2]:
        corr = np.nan_to_num(np.corrcoef(fea.reshape(fea.shape[0], -1)))
        expected.append(np.linalg.eigvalsh(corr).min())
    assert np.allclose(v["meco"][:2], expected, rtol=1e-9, atol=1e-12)
    assert v["meco"][2] is None  # the classifier's map has one position: no correlation, NULL
    assert math.isclose(stats.values["meco"], sum(expected), rel_tol=1e-9)
    assert "meco" not in stats.reasons


def test_meco_of_a_network_whose_every_map_has_one_position_is_null_with_its_reason():
    net = torch.nn.Sequential(torch.nn.Flatten(), TinyNet().fc)
    net[1] = type(net[1])(3 * 64 * 64, 3)
    from zcpipe.workers.spaces import tag

    tag(net[1], "fc", "linear")
    stats, v = _engine(net, tiny_batch(), ["meco"])
    assert stats.values["meco"] is None and v["meco"] == [None]
    assert stats.reasons["meco"].startswith("undefined in every layer (a feature map with one position")


def test_swap_counts_the_distinct_sign_patterns_of_the_relu_outputs_over_16_images():
    torch.manual_seed(1)
    net, batch = TinyNet(bn=True), tiny_batch(n=20)
    stats, _ = _engine(net, batch, ["swap"])
    maps = []
    hook = net.act.register_forward_hook(lambda _m, _i, o: maps.append(o.detach().flatten(1).numpy() > 0))
    net.train()
    with torch.no_grad():
        net(batch.images[:16])
    hook.remove()
    signs = np.concatenate(maps, axis=1)  # images × neurons, both ReLU calls side by side
    assert signs.shape[0] == 16
    assert stats.values["swap"] == len(np.unique(signs, axis=1).T)  # distinct columns
    assert 1 < stats.values["swap"] <= signs.shape[1]


def test_swap_of_a_network_without_relu_is_null():
    net = TinyNet()
    net.act = torch.nn.Identity()
    stats, _ = _engine(net, tiny_batch(), ["swap"])
    assert stats.values["swap"] is None and "no nn.ReLU" in stats.reasons["swap"]


def test_zico_is_the_log_inverse_coefficient_of_variation_of_the_accumulated_gradients():
    torch.manual_seed(2)
    net, batch = TinyNet(bn=True), tiny_batch(n=8)
    stats, v = _engine(net, batch, ["zico"])
    # The reference, step by step: two halves, two backwards, gradients not zeroed between them.
    twin = TinyNet(bn=True)
    twin.load_state_dict(net.state_dict())
    twin.train()
    twin.zero_grad()
    grads = {name: [] for name in ("c1", "c2", "fc")}
    for s, e in ((0, 4), (4, 8)):
        F.cross_entropy(twin(batch.images[s:e]), batch.labels[s:e]).backward()
        for name in grads:
            grads[name].append(getattr(twin, name).weight.grad.detach().double().numpy().ravel().copy())
    expected = []
    for name in ("c1", "c2", "fc"):
        g = np.array(grads[name])
        std = np.std(g, axis=0)
        nz = np.nonzero(std)[0]
        expected.append(np.log(np.sum(np.mean(np.abs(g), axis=0)[nz] / std[nz])))
    assert np.allclose(v["zico"], expected, rtol=1e-6)
    assert math.isclose(stats.values["zico"], sum(expected), rel_tol=1e-6)


def test_zico_leaves_a_layer_out_whose_gradient_never_changes():
    net, batch = TinyNet(), tiny_batch()
    net.fc.weight.requires_grad_(False)  # no gradient at all: both samples zero
    stats, v = _engine(net, batch, ["zico"])
    assert v["zico"][2] is None and v["zico"][0] is not None
    assert math.isclose(stats.values["zico"], v["zico"][0] + v["zico"][1], rel_tol=1e-12)


def test_on_nb201_cells_the_new_proxies_are_finite_deterministic_and_leave_other_proxies_alone(cifar_batch):
    from zcpipe.workers.spaces import BuildOptions, get_space

    space = get_space("nb201")
    names = ["meco", "swap", "zico", "snip", "grad_norm"]
    for arch in space.sample(2, 0):
        torch.manual_seed(0)
        model = space.build(arch, BuildOptions())
        a = ProxyEngine(get_proxies(names)).compute(model, cifar_batch, generator_seed=3)
        b = ProxyEngine(get_proxies(names)).compute(model, cifar_batch, generator_seed=3)
        alone = ProxyEngine(get_proxies(["snip", "grad_norm"])).compute(model, cifar_batch, generator_seed=3)
        assert a.values == b.values and all(math.isfinite(a.values[n]) for n in names), a.reasons
        assert {n: a.values[n] for n in ("snip", "grad_norm")} == alone.values  # their own copies: no side effect
        assert (a.values["swap"] > 1 and a.values["meco"] < 0) or a.values["meco"] >= 0


def test_az_expressivity_is_the_entropy_of_the_channel_covariance_spectrum_and_trainability_its_svd():
    from zcpipe.workers.proxies.az_nas import expressivity_of, trainability_of

    rng = np.random.default_rng(0)
    feat = rng.standard_normal((4, 6, 5, 5)) * np.array([1.0, 2.0, 0.1, 3.0, 1.0, 0.5])[None, :, None, None]
    rows = feat.transpose(0, 2, 3, 1).reshape(-1, 6)
    s = np.linalg.eigvalsh(np.cov(rows, rowvar=False, bias=True))
    p = s / s.sum()
    want = float(-(p * np.log(p + 1e-8)).sum())
    assert math.isclose(float(expressivity_of(torch.from_numpy(feat))), want, rel_tol=1e-9)
    # Trainability across a resolution halving: the input gradient is pixel-unshuffled (numpy's reshape).
    g_in, g_out = rng.standard_normal((2, 3, 8, 8)), rng.choice([-1.0, 1.0], size=(2, 5, 4, 4))
    unshuffled = g_in.reshape(2, 3, 4, 2, 4, 2).transpose(0, 1, 3, 5, 2, 4).reshape(2, 12, 4, 4)
    a, b = unshuffled.transpose(0, 2, 3, 1).reshape(-1, 12), g_out.transpose(0, 2, 3, 1).reshape(-1, 5)
    sigma = np.linalg.svd(a.T @ b / len(b), compute_uv=False).max()
    got = float(trainability_of(torch.from_numpy(g_in), torch.from_numpy(g_out)))
    assert math.isclose(got, -sigma - 1 / (sigma + 1e-6) + 2, rel_tol=1e-9)


def test_az_nas_on_nb201_cells_shares_one_pass_nulls_an_identity_cell_and_a_network_without_cells(cifar_batch):
    from zcpipe.workers.spaces import BuildOptions, get_space

    names = ["az_expressivity", "az_progressivity", "az_trainability"]
    space = get_space("nb201", channels=8, cells_per_stage=1)
    torch.manual_seed(0)
    net = space.build("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
                      BuildOptions())  # fmt: skip
    first, _ = _engine(net, cifar_batch, names)
    again, _ = _engine(net, cifar_batch, names)
    assert first.values == again.values and all(math.isfinite(first.values[n]) for n in names)
    # Gaussian input of the batch's shape, as the reference feeds AZ-NAS: other images, same values.
    flipped = dataclasses.replace(cifar_batch, images=cifar_batch.images.flip(0).flip(3))
    assert _engine(net, flipped, names)[0].values == first.values
    # A cell that is the identity passes the gradient unchanged: the reference's −inf, NULL here.
    identity = space.build("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", BuildOptions())
    stats, _ = _engine(identity, cifar_batch, names)
    assert stats.values["az_trainability"] is None and "unchanged" in stats.reasons["az_trainability"]
    assert math.isfinite(stats.values["az_expressivity"])
    stats, _ = _engine(TinyNet(bn=True), tiny_batch(), names)  # no stem and cells
    assert all(stats.values[n] is None and "stem and cells" in stats.reasons[n] for n in names)
