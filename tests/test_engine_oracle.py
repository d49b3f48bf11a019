"""The shared-pass engine equals the one-proxy-at-a-time oracle on real NB201 cells and images."""

import math

import pytest
import torch

from zcpipe.workers.engine import ProxyEngine
from zcpipe.workers.proxies import Batch, all_proxies, get_proxies
from zcpipe.workers.spaces import BuildOptions, get_space

CELLS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|nor_conv_3x3~0|none~1|nor_conv_1x1~2|",
]


def _both_paths(arch, batch, names, dtype, images=None, oracle=True):
    engine = ProxyEngine(get_proxies(names))
    torch.manual_seed(11)
    model = get_space("nb201").build(arch, BuildOptions()).to(dtype)
    batch = Batch(batch.images[:images].to(dtype), batch.labels[:images], batch.num_classes, batch.sha256)
    shared = engine.compute(model, batch, generator_seed=5)
    assert not shared.reasons, shared.reasons
    if not oracle:
        return shared, None
    reference = engine.compute_one_at_a_time(model, batch, generator_seed=5)
    assert not reference.reasons, reference.reasons
    return shared, reference


def _assert_equal_per_layer(shared, oracle, names, rel):
    names = set(names)
    for name in names:
        a, b = shared.values[name], oracle.values[name]
        assert math.isfinite(a), name
        assert a == pytest.approx(b, rel=rel), name
    for ls, lo in zip(shared.layers, oracle.layers, strict=True):
        assert ls.slot == lo.slot
        for name in names & ls.values.keys():
            if lo.values[name] is None:  # a layer with no value by definition (meco's classifier) on both paths
                assert ls.values[name] is None, (ls.slot, name)
                continue
            assert ls.values[name] == pytest.approx(lo.values[name], rel=rel, abs=1e-30), (ls.slot, name)


@pytest.mark.parametrize("arch", CELLS)
def test_shared_passes_equal_the_oracle_per_layer_in_float64(arch, cifar_batch):
    # In float64 rounding is far below 1e-6, so this checks that the shared passes (GraSP's
    # written-out double backward included) compute the oracle's quantities, for every proxy.
    # Eight images keep float64's slow convolutions affordable.
    names = sorted(all_proxies())
    shared, oracle = _both_paths(arch, cifar_batch, names, torch.float64, images=8)
    _assert_equal_per_layer(shared, oracle, names, rel=1e-6)


@pytest.mark.parametrize("arch", CELLS)
def test_shared_passes_equal_the_oracle_per_layer_in_float32(arch, cifar_batch):
    # Every proxy but GraSP runs the oracle's kernels in float32, so equal to 1e-6 per layer.
    # GraSP's double backward uses other (exact) formulas. In float32 both paths then sit about
    # 1e-4 to 1e-3 of the largest layer value away from float64 (rounding in the forward and
    # first backward they share), and within 2e-5 of it from each other.
    # Sixteen images: what is compared (the same kernels on both paths; GraSP's rounding against float64)
    # does not depend on the batch size, and float64's convolutions of the reference are the slow part.
    names = sorted(set(all_proxies()) - {"grasp"})
    shared, oracle = _both_paths(arch, cifar_batch, [*names, "grasp"], torch.float32, images=16)
    _assert_equal_per_layer(shared, oracle, names, rel=1e-6)
    exact, _ = _both_paths(arch, cifar_batch, ["grasp"], torch.float64, images=16, oracle=False)
    truth = [layer.values["grasp"] for layer in exact.layers]
    ours = [layer.values["grasp"] for layer in shared.layers]
    theirs = [layer.values["grasp"] for layer in oracle.layers]
    scale = max(abs(v) for v in truth)
    assert ours == pytest.approx(theirs, abs=2e-5 * scale)
    assert shared.values["grasp"] == pytest.approx(oracle.values["grasp"], rel=1e-4)
    ours_err = max(abs(a - t) for a, t in zip(ours, truth, strict=True))
    theirs_err = max(abs(b - t) for b, t in zip(theirs, truth, strict=True))
    assert ours_err <= theirs_err + 2e-5 * scale


def test_a_small_memory_budget_splits_the_batch_and_accumulates_exactly(cifar_batch):
    from zcpipe.workers.engine import plan_micro_batch
    from zcpipe.workers.proxies import Batch
    from zcpipe.workers.proxies.passes import micro_batches

    names = ["plain", "snip", "grad_norm", "fisher", "grasp", "jacov", "nwot"]
    torch.manual_seed(3)
    model = get_space("nb201").build(CELLS[0], BuildOptions())
    budget = 512 * 2**20
    size = plan_micro_batch(model, cifar_batch, budget, hvp=True)
    assert size is not None and 1 < size < 32
    tight = ProxyEngine(get_proxies(names), memory_budget_bytes=budget).compute(model, cifar_batch, 0)
    assert tight.micro_batches == len(micro_batches(32, size)) > 1
    for n in names:
        assert math.isfinite(tight.values[n]), n
    # BatchNorm sees each micro-batch alone, so the reference is the share-weighted sum of each
    # micro-batch computed on its own; `plain` is linear in the gradient, so it must match per layer.
    expect, expect_fisher = [0.0] * len(tight.layers), [0.0] * len(tight.layers)
    for s, e in micro_batches(32, size):
        chunk = Batch(cifar_batch.images[s:e], cifar_batch.labels[s:e], 10, "chunk")
        alone = ProxyEngine(get_proxies(["plain", "fisher"])).compute(model, chunk, 0)
        for i, layer in enumerate(alone.layers):
            expect[i] += (e - s) / 32 * layer.values["plain"]
            # fisher squares the share-weighted gradient and averages over all 32 images: share³.
            expect_fisher[i] += ((e - s) / 32) ** 3 * layer.values["fisher"]
    got = [layer.values["plain"] for layer in tight.layers]
    assert got == pytest.approx(expect, rel=1e-4, abs=5e-7)  # signed sums cancel to ~1e-6 in some layers
    assert [layer.values["fisher"] for layer in tight.layers] == pytest.approx(expect_fisher, rel=1e-4)
