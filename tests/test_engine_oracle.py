"""The shared-pass engine equals the one-proxy-at-a-time oracle on real NB201 cells and images."""

import math

import pytest
import torch

from zcpipe.workers.engine import ProxyEngine
from zcpipe.workers.proxies import all_proxies, get_proxies
from zcpipe.workers.spaces import BuildOptions, get_space

CELLS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|nor_conv_3x3~0|none~1|nor_conv_1x1~2|",
]


@pytest.mark.parametrize("arch", CELLS)
def test_shared_passes_equal_the_oracle_per_layer(arch, cifar_batch):
    names = sorted(all_proxies())
    engine = ProxyEngine(get_proxies(names))
    torch.manual_seed(11)
    model = get_space("nb201").build(arch, BuildOptions())
    shared = engine.compute(model, cifar_batch, generator_seed=5)
    oracle = engine.compute_one_at_a_time(model, cifar_batch, generator_seed=5)
    assert not shared.reasons and not oracle.reasons, (shared.reasons, oracle.reasons)
    for name in names:
        a, b = shared.values[name], oracle.values[name]
        assert math.isfinite(a), name
        assert a == pytest.approx(b, rel=1e-6), name
    for ls, lo in zip(shared.layers, oracle.layers, strict=True):
        assert ls.slot == lo.slot
        for name, v in ls.values.items():
            assert v == pytest.approx(lo.values[name], rel=1e-6, abs=1e-30), (ls.slot, name)


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
    expect = [0.0] * len(tight.layers)
    for s, e in micro_batches(32, size):
        chunk = Batch(cifar_batch.images[s:e], cifar_batch.labels[s:e], 10, "chunk")
        alone = ProxyEngine(get_proxies(["plain"])).compute(model, chunk, 0)
        for i, layer in enumerate(alone.layers):
            expect[i] += (e - s) / 32 * layer.values["plain"]
    got = [layer.values["plain"] for layer in tight.layers]
    assert got == pytest.approx(expect, rel=1e-4, abs=5e-7)  # signed sums cancel to ~1e-6 in some layers
