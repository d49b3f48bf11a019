"""Each proxy against a computation that does not share its code path."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jvp

from tests.tiny import TinyNet, tiny_batch
from zcpipe.workers.engine import ProxyEngine
from zcpipe.workers.proxies import Batch, get_proxies

LAYERS = ("c1.weight", "c2.weight", "fc.weight")


def _engine_values(net, batch, names, **kw):
    stats = ProxyEngine(get_proxies(list(names)), **kw).compute(net, batch, generator_seed=0)
    return stats, {n: [layer.values.get(n) for layer in stats.layers] for n in names}


def _loss_fn(net, batch):
    buffers = dict(net.named_buffers())

    def loss(params):
        return F.cross_entropy(functional_call(net, (params, buffers), (batch.images,)), batch.labels)

    return loss


def test_synflow_obeys_the_layerwise_conservation_law():
    # Tanaka et al.: for a bias-free positive network with an all-ones input, every layer's
    # synflow equals R, the sum of the outputs. Compute R by a plain float64 forward.
    torch.manual_seed(0)
    net, batch = TinyNet(), tiny_batch()
    _, v = _engine_values(net, batch, ["synflow"])
    absnet = TinyNet().double()
    absnet.load_state_dict({k: t.abs().double() for k, t in net.state_dict().items()})
    with torch.no_grad():
        r = float(absnet(torch.ones(1, 3, 6, 6, dtype=torch.float64)).sum())
    assert v["synflow"] == pytest.approx([r, r, r], rel=1e-12)


def test_synflow_bypasses_batchnorm_and_is_float64():
    torch.manual_seed(0)
    with_bn = TinyNet(bn=True)
    with torch.no_grad():
        with_bn.bn.weight.fill_(7.0)  # would scale R sevenfold if BN were not bypassed
    plain = TinyNet()
    plain.load_state_dict({k: t for k, t in with_bn.state_dict().items() if not k.startswith("bn.")})
    a = _engine_values(with_bn, tiny_batch(), ["synflow"])[1]["synflow"]
    b = _engine_values(plain, tiny_batch(), ["synflow"])[1]["synflow"]
    assert a == b


def test_snip_grad_norm_plain_match_functional_gradients():
    torch.manual_seed(1)
    net, batch = TinyNet(bias=True), tiny_batch()
    _, v = _engine_values(net, batch, ["snip", "grad_norm", "plain"])
    params = {k: p.detach() for k, p in net.named_parameters()}
    g = grad(_loss_fn(net, batch))(params)
    for i, name in enumerate(LAYERS):
        assert v["snip"][i] == pytest.approx(float((g[name] * params[name]).abs().double().sum()), rel=1e-6)
        assert v["plain"][i] == pytest.approx(float((g[name] * params[name]).double().sum()), rel=1e-5, abs=1e-9)
        assert v["grad_norm"][i] == pytest.approx(float(g[name].double().norm()), rel=1e-6)


def test_grasp_matches_forward_over_reverse_hvp():
    torch.manual_seed(2)
    net, batch = TinyNet(bias=True), tiny_batch()
    _, v = _engine_values(net, batch, ["grasp"])
    params = {k: p.detach() for k, p in net.named_parameters()}
    g_fn = grad(_loss_fn(net, batch))
    g = g_fn(params)
    # GraSP's z differentiates only through the weights of conv/linear layers, so the tangent is g
    # on those and zero on biases.
    tangent = {k: (g[k] if k in LAYERS else torch.zeros_like(t)) for k, t in params.items()}
    _, hg = jvp(g_fn, (params,), (tangent,))
    for i, name in enumerate(LAYERS):
        expect = float((-params[name] * hg[name]).double().sum())
        assert v["grasp"][i] == pytest.approx(expect, rel=1e-4, abs=1e-7)


def test_fisher_of_the_classifier_by_hand():
    # For the last Linear layer a = logits and ∂CE/∂a = (softmax − onehot)/N, so fisher per
    # output k is ½·mean_n(a_nk·(p_nk − y_nk)/N)², broadcast over its in_features weights.
    torch.manual_seed(3)
    net, batch = TinyNet(bias=True), tiny_batch()
    _, v = _engine_values(net, batch, ["fisher"])
    with torch.no_grad():
        a = net(batch.images).double().numpy()
    p = np.exp(a - a.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.eye(3)[batch.labels.numpy()]
    n = a.shape[0]
    per_k = 0.5 * ((a * (p - y) / n) ** 2).mean(0)
    assert v["fisher"][2] == pytest.approx(float(per_k.sum() * 5), rel=1e-5)


def test_l2_norm_params_and_flops_by_hand():
    torch.manual_seed(4)
    net, batch = TinyNet(bias=True), tiny_batch()
    stats, v = _engine_values(net, batch, ["l2_norm", "params", "flops"])
    assert v["l2_norm"][0] == pytest.approx(float(net.c1.weight.double().norm()), rel=1e-7)
    assert [layer.params for layer in stats.layers] == [3 * 4 * 9 + 4, 4 * 5 + 5, 5 * 3 + 3]
    # 2 FLOPs per multiply-add for one 6×6 image: conv 3×3 (pad 1), conv 1×1, linear.
    assert [layer.flops for layer in stats.layers] == [2 * 4 * 36 * 27, 2 * 5 * 36 * 4, 2 * 3 * 5]
    assert stats.values["params"] == sum(p.numel() for p in net.parameters())


def _networks_of_every_space():
    """(space, cell, network) for 2 seeded cells of every space, for 32x32 images."""
    from zcpipe.workers.spaces import BuildOptions, available_spaces, get_space

    for name in available_spaces():
        space = get_space(name)
        for cell in space.sample(2, 1):
            torch.manual_seed(0)
            yield name, cell, space.build(cell, BuildOptions())


def test_flops_from_one_forward_equal_the_meta_count_in_every_space():
    # The engine counts FLOPs from the shapes of a real forward (~17x less host time than the meta pass):
    # one image's, or its data pass's; the meta-device pass under torch's counter stays the reference,
    # here and as the oracle.
    from zcpipe.workers.proxies.counts import count_flops, weight_layer_flops

    for name, cell, net in _networks_of_every_space():
        per_layer, total, _ = count_flops(net, (3, 32, 32))
        assert weight_layer_flops(net, (3, 32, 32), torch.float32) == (per_layer, total), (name, cell)
        before = {k: v.clone() for k, v in net.state_dict().items()}
        stats = ProxyEngine(get_proxies(["params", "flops"])).compute(
            net, Batch(torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.long), 10, "z"), 0
        )
        assert stats.values["flops"] == total and [layer.flops for layer in stats.layers] == per_layer
        assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # no statistic moved
        # With a data pass, its own forward counts (no forward of the count's own), in micro-batches too.
        for micro in (None, 1):
            stats = ProxyEngine(get_proxies(["params", "flops", "snip"]), micro_batch=micro).compute(
                net, Batch(torch.randn(2, 3, 32, 32), torch.zeros(2, dtype=torch.long), 10, "z"), 0
            )
            assert stats.values["flops"] == total and [layer.flops for layer in stats.layers] == per_layer


def test_planning_measures_what_a_real_forward_of_one_image_saves_and_moves_no_statistic():
    # Planning multiplies these bytes by the images and the backward's factor. They are the kernels'
    # bytes: the meta reference's decompositions save a little more (3-13 %), never less.
    from zcpipe.workers.proxies.counts import activation_bytes_per_image, count_flops

    for name, cell, net in _networks_of_every_space():
        before = {k: v.clone() for k, v in net.state_dict().items()}
        real = activation_bytes_per_image(net, (3, 32, 32), torch.float32)
        meta = count_flops(net, (3, 32, 32))[2]
        assert 0.8 * meta <= real <= meta, (name, cell, real, meta)
        assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()), name


def test_forward_flops_count_the_first_forward_that_completes_for_one_image():
    # A forward that fails part-way (out of memory) is forgotten; later ones (micro-batches, GraSP's split
    # passes) are not counted again; a batch of 5 counts as one image.
    from zcpipe.workers.proxies.counts import forward_flops, weight_layer_flops

    class Flaky(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.fail = TinyNet(bias=True), True

        def forward(self, x):
            self.net.c1(x)  # counted (in a completed forward, twice), then the failure
            if self.fail:
                self.fail = False
                raise RuntimeError("out of memory (simulated)")
            return self.net(x)

    torch.manual_seed(0)
    net, x = Flaky(), tiny_batch().images
    with forward_flops(net) as counted:
        assert counted.result(net) is None
        with pytest.raises(RuntimeError, match="simulated"):
            net(x[:5])
        net(x[:5])
        net(x)
    net.fail = False
    per_layer, total = weight_layer_flops(net, tuple(x.shape[1:]), x.dtype)
    c1 = weight_layer_flops(net.net, tuple(x.shape[1:]), x.dtype)[0][0]
    assert counted.result(net) == (per_layer, total) and per_layer[0] == 2 * c1  # c1 runs twice a forward


def test_jacov_and_nwot_match_their_formulas():
    torch.manual_seed(5)
    net, batch = TinyNet(bias=True), tiny_batch()
    stats, _ = _engine_values(net, batch, ["jacov", "nwot"])
    x = batch.images.clone().requires_grad_(True)
    net(x).sum().backward()
    jac = x.grad.reshape(len(x), -1).double().numpy()
    lam = np.linalg.eigvalsh(np.corrcoef(jac))
    assert stats.values["jacov"] == pytest.approx(-np.sum(np.log(lam + 1e-5) + 1 / (lam + 1e-5)), rel=1e-6)
    # NASWOT kernel by hand from the inputs of both ReLU calls.
    with torch.no_grad():
        h1 = net.bn(net.c1(batch.images)).flatten(1)
        h2 = net.c2(torch.relu(h1.view(len(x), 4, 6, 6))).flatten(1)
    k = sum(((c > 0).double() @ (c > 0).double().T + (c <= 0).double() @ (c <= 0).double().T).numpy() for c in (h1, h2))
    assert stats.values["nwot"] == pytest.approx(np.linalg.slogdet(k)[1], rel=1e-9)


def _epe_nas_by_numpy(rows: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    # NAS-Bench-Suite-Zero's per-class scoring, written out with numpy's corrcoef.
    per_class = []
    for c in np.unique(labels):
        corrs = np.corrcoef(rows[labels == c])
        s = np.sum(np.log(np.abs(corrs) + 1e-5))
        per_class.append(s / np.size(corrs) ** 0.5 if num_classes > 100 else s)
    v = np.array(per_class)
    spread = np.abs(v[:, None] - v[None, :]).sum()
    return spread / len(v) if num_classes <= 100 else spread


def test_whole_network_proxies_of_many_networks_at_once_equal_each_alone_and_numpys_formulas():
    # The batched path computes jacov, epe_nas and nwot for a pass's networks together; a network with no
    # value must get its own reason without disturbing the others'.
    from zcpipe.workers.proxies import ProxyUndefined, epe_nas, jacov, nwot
    from zcpipe.workers.proxies.passes import ArchInputs

    rng = np.random.default_rng(0)
    grads = torch.tensor(rng.standard_normal((5, 12, 3, 4, 4)), dtype=torch.float32)
    grads[2] = 0.0  # this network's output does not depend on its input
    grads[1, 5, 0, 0, 0] = float("inf")  # and this one's overflows
    grads[4, 0, 1, 0, 0] = float("nan")
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3])  # class 3: one image, the matrix [[1]]
    rows = grads.flatten(2).double().numpy()
    for num_classes in (10, 120):  # above 100 classes each class's sum is scaled by its matrix's side
        together = epe_nas.scores(ArchInputs(5, labels, num_classes, grads))
        for b in (0, 3):
            alone = epe_nas.scores(ArchInputs(1, labels, num_classes, grads[b : b + 1]))[0]
            assert together[b] == pytest.approx(_epe_nas_by_numpy(rows[b], labels.numpy(), num_classes), rel=1e-12)
            assert together[b] == pytest.approx(alone, rel=1e-13)
        assert isinstance(together[2], ProxyUndefined) and "constant" in str(together[2])
        assert "not finite" in str(together[1]) and "not finite" in str(together[4])
    together = jacov.scores(ArchInputs(5, labels, 10, grads))
    assert "not finite" in str(together[1]) and "not finite" in str(together[4])
    for b in (0, 3):
        lam = np.linalg.eigvalsh(np.corrcoef(rows[b]))
        assert together[b] == pytest.approx(-np.sum(np.log(lam + 1e-5) + 1 / (lam + 1e-5)), rel=1e-12)
    assert isinstance(together[2], ProxyUndefined) and "does not depend on the input" in str(together[2])
    codes = torch.tensor(rng.integers(0, 2, (4, 12, 50)), dtype=torch.float64)
    kernels = codes @ codes.transpose(1, 2) + (1 - codes) @ (1 - codes).transpose(1, 2)
    kernels[1] = 0.0  # no ReLU in this network
    kernels[2, 1], kernels[2, :, 1] = kernels[2, 0], kernels[2, :, 0]  # images 0 and 1 share every code
    together = nwot.scores(kernels)
    assert together[0] == pytest.approx(np.linalg.slogdet(kernels[0].numpy())[1], rel=1e-12)
    assert together[3] == pytest.approx(np.linalg.slogdet(kernels[3].numpy())[1], rel=1e-12)
    assert "no nn.ReLU" in str(together[1]) and "singular" in str(together[2])
    assert "no nn.ReLU" in str(nwot.scores(None, 3)[2])


def test_value_that_cannot_be_computed_is_null_with_a_reason(cifar_batch):
    from zcpipe.workers.spaces import BuildOptions, get_space

    # Every cell edge is `none`: the logits do not depend on the input at all.
    dead = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    torch.manual_seed(0)
    model = get_space("nb201").build(dead, BuildOptions())
    stats, _ = _engine_values(model, cifar_batch, ["jacov", "snip"])
    assert stats.values["jacov"] is None
    assert "does not depend on the input" in stats.reasons["jacov"]
    assert stats.values["snip"] is not None and math.isfinite(stats.values["snip"])


def test_micro_batches_accumulate_to_the_full_batch_without_bn():
    torch.manual_seed(6)
    net, batch = TinyNet(bias=True), tiny_batch(n=12)
    names = ["snip", "grad_norm", "plain", "fisher", "grasp", "jacov", "nwot", "epe_nas"]
    full, vf = _engine_values(net, batch, names)
    split, vs = _engine_values(net, batch, names, micro_batch=5)
    assert split.micro_batches == 3 and full.micro_batches == 1
    for n in names:
        if n in ("jacov", "nwot", "epe_nas"):
            assert split.values[n] == pytest.approx(full.values[n], rel=1e-6), n
        else:
            assert vs[n] == pytest.approx(vf[n], rel=1e-5, abs=1e-9), n
