"""The batched path (workers/batched) against the single-architecture engine, its reference.

In float64 both compute the same function, so every value, whole-network and per layer, must agree to
rounding (1e-9); in float32 they differ by the network's own rounding noise, as two devices do
(docs/proxies.md, bench/batched.py).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from zcpipe.workers.batched.engine import BatchedEngine
from zcpipe.workers.batched.nb201 import BatchedNB201
from zcpipe.workers.batched.stacked import StackedBatchNorm2d, StackedConv2d
from zcpipe.workers.data import to_batch
from zcpipe.workers.engine import ProxyEngine
from zcpipe.workers.proxies import get_proxies
from zcpipe.workers.seeding import derive_seed
from zcpipe.workers.spaces import BuildOptions, get_space
from zcpipe.workers.worker import ProxyWorker, WorkerConfig

# Every op kind on some edge, cells whose groups differ edge by edge, and a cell of `none` only
# (whose input-gradient proxies are NULL with a reason).
CELLS = [
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|",
    "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_1x1~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
]
# DARTS cells (nds-darts, width 4, depth 3: a normal cell, then two reduction cells, the second after a
# reduction so its first input is factorized): both pools, skip as identity and as factorized reduction,
# both separable and both dilated convolutions, nodes reading each input; every cell ends in a skip or
# pool, so the input gradients jacov and epe_nas read are not rounding noise (a sum of logits over the
# batch does not depend on the input when every output node ends in a training-mode BatchNorm).
DARTS = [
    "normal=max_pool_3x3~0,avg_pool_3x3~1|skip_connect~0,sep_conv_5x5~2|dil_conv_3x3~1,dil_conv_5x5~3|"
    "skip_connect~1,sep_conv_3x3~4;reduce=skip_connect~0,skip_connect~1|max_pool_3x3~0,skip_connect~2|"
    "avg_pool_3x3~1,sep_conv_3x3~3|dil_conv_5x5~0,skip_connect~4",
    "normal=sep_conv_3x3~0,skip_connect~1|max_pool_3x3~1,dil_conv_5x5~2|avg_pool_3x3~0,sep_conv_5x5~3|"
    "dil_conv_3x3~2,skip_connect~4;reduce=sep_conv_5x5~0,dil_conv_3x3~1|skip_connect~0,max_pool_3x3~2|"
    "sep_conv_3x3~1,avg_pool_3x3~2|dil_conv_5x5~3,skip_connect~1",
    "normal=avg_pool_3x3~0,dil_conv_3x3~1|sep_conv_3x3~0,skip_connect~1|max_pool_3x3~2,skip_connect~3|"
    "sep_conv_5x5~0,avg_pool_3x3~4;reduce=max_pool_3x3~0,sep_conv_3x3~1|dil_conv_3x3~0,avg_pool_3x3~2|"
    "skip_connect~1,skip_connect~3|max_pool_3x3~1,sep_conv_5x5~4",
]
BATCHED = ["params", "flops", "synflow", "snip", "grad_norm", "fisher", "grasp", "jacov", "epe_nas", "nwot",
           "plain", "l2_norm"]  # fmt: skip


def _batch(n: int, dtype: torch.dtype, size: int = 32) -> object:
    rng = np.random.default_rng(3)
    images = rng.standard_normal((n, 3, size, size)).astype(np.float32)
    batch = to_batch(images, rng.integers(0, 10, n), 10, "cpu")
    return replace(batch, images=batch.images.to(dtype))


def _models(cells: list[str], dtype: torch.dtype, channels: int = 8, cells_per_stage: int = 1) -> list:
    space = get_space("nb201", channels=channels, cells_per_stage=cells_per_stage)
    out = []
    for i, cell in enumerate(cells):
        torch.manual_seed(100 + i)
        out.append(space.build(cell, BuildOptions()).to(dtype))
    return out


def _close(a: float | None, b: float | None, rel: float, scale: float = 0.0) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= rel * abs(b) + scale


def _assert_equal_in_float64(cells: list[str], make, batch) -> list:
    seeds = [derive_seed(0, c, "proxy") for c in cells]
    names = [*BATCHED, "zen"]  # zen: its own pass, run per architecture inside the batched engine
    single = ProxyEngine(get_proxies(names))
    reference = [single.compute(m, batch, s) for m, s in zip(make(), seeds, strict=True)]
    batched = BatchedEngine(ProxyEngine(get_proxies(names))).compute(make(), batch, seeds)
    for cell, ref, got in zip(cells, reference, batched, strict=True):
        assert got.reasons == ref.reasons, cell
        for name in names:
            assert _close(got.values[name], ref.values[name], 1e-9), (cell, name, got.values[name], ref.values[name])
        assert [layer.slot for layer in got.layers] == [layer.slot for layer in ref.layers]
        # Counted from one forward of the batched network, not a count pass each: the same integers.
        assert [layer.flops for layer in got.layers] == [layer.flops for layer in ref.layers]
        assert (got.values["params"], got.values["flops"]) == (ref.values["params"], ref.values["flops"])
        for name in BATCHED[2:]:
            ref_layers = [layer.values.get(name) for layer in ref.layers]
            # plain is a signed sum: a layer near zero is judged against the network's largest layer.
            scale = 1e-9 * max((abs(v) for v in ref_layers if v is not None), default=0.0)
            for layer, want in zip(got.layers, ref_layers, strict=True):
                assert _close(layer.values.get(name), want, 1e-9, scale), (cell, name, layer.slot)
            if name in ("jacov", "epe_nas", "nwot") and ref.values[name] is None:
                assert ref.reasons[name]  # NULL keeps its reason
    return batched


@pytest.fixture(params=["per-arch", "grouped"])
def conv_kernels(request, monkeypatch):
    """Both ways a stacked convolution runs: one per architecture (the CPU's) and one grouped kernel
    (the GPU's), so the GPU's stacking is checked here too."""
    from zcpipe.workers.batched import network

    devices = {"cuda", "cpu"} if request.param == "grouped" else {"cuda"}
    monkeypatch.setattr(network, "GROUPED_CONV_DEVICES", devices)
    return request.param


def test_batched_path_equals_the_single_engine_in_float64_for_every_value_and_layer(conv_kernels):
    batched = _assert_equal_in_float64(CELLS, lambda: _models(CELLS, torch.float64), _batch(8, torch.float64))
    assert batched[0].values["params"] != batched[3].values["params"]  # counts are per architecture


def test_a_pass_whose_every_cell_outputs_zeros_equals_the_single_engine(conv_kernels):
    # Every architecture of the pass picks `none` on all of a node's inputs: the node is zeros that stay in
    # the graph (the single engine's `Zero` is x·0), so the input gradients are zeros and jacov and epe_nas
    # are NULL with their reasons, not an error about an input the graph never used.
    cells = [CELLS[3], "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|"]
    for some in (cells[:1], cells):
        batched = _assert_equal_in_float64(
            some, lambda some=some: _models(some, torch.float64), _batch(8, torch.float64)
        )
        assert all(st.values["jacov"] is None and st.reasons["jacov"] for st in batched)


def test_batched_darts_networks_equal_the_single_engine_in_float64(conv_kernels):
    space = get_space("nds-darts", width=4, depth=3)

    def make() -> list:
        out = []
        for i, cell in enumerate(DARTS):
            torch.manual_seed(200 + i)
            out.append(space.build(space.parse(cell), BuildOptions()).to(torch.float64))
        return out

    batched = _assert_equal_in_float64(DARTS, make, _batch(8, torch.float64, size=16))
    assert len({st.values["params"] for st in batched}) == len(DARTS)


def test_on_the_cpu_batched_float32_values_equal_the_single_engines():
    # One convolution per architecture on the CPU: the single engine's kernels, so float32 agrees far
    # below the network's own rounding noise (grouped kernels: ~1e-2 apart). grasp and plain are
    # signed sums whose terms cancel: judged against the largest value of the cells.
    seeds = [derive_seed(0, c, "proxy") for c in CELLS]
    names = [*BATCHED, "zen"]
    engine = ProxyEngine(get_proxies(names))
    batch = _batch(32, torch.float32)  # NB201's own width: the grouped kernels differ from 16 channels on

    def make() -> list:
        return _models(CELLS, torch.float32, channels=16)

    reference = [engine.compute(m, batch, s) for m, s in zip(make(), seeds, strict=True)]
    batched = BatchedEngine(engine).compute(make(), batch, seeds)
    for name in names:
        refs = [r.values[name] for r in reference]
        scale = max((abs(v) for v in refs if v is not None), default=0.0)
        signed = name in ("grasp", "plain")
        for got, want in zip([b.values[name] for b in batched], refs, strict=True):
            assert _close(got, want, 1e-5, 1e-5 * scale if signed else 0.0), (name, got, want)


def test_with_the_gpus_grouped_kernels_a_pass_of_16_dispatches_fewer_operators_per_architecture(monkeypatch):
    # Launches per architecture are the GPU's cost (issue "gpu busy"); counted here as on a GPU, each stacked
    # convolution one grouped kernel. 16 cells drawn at random, so the edges' op groups differ; NB201's
    # depth (the operators do not depend on width or image size).
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    from zcpipe.workers.batched import network

    class Count(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            on_meta = any(isinstance(t, torch.Tensor) and t.is_meta for t in tree_leaves((args, kwargs, out)))
            Count.ops += not (func.is_view or on_meta)  # neither launches a kernel
            return out

    monkeypatch.setattr(network, "GROUPED_CONV_DEVICES", {"cuda", "cpu"})
    cells = get_space("nb201").sample(16, 1)
    names = [*BATCHED, "zen"]
    batch, seeds = _batch(2, torch.float32, size=8), [derive_seed(0, c, "proxy") for c in cells]
    single, batched = ProxyEngine(get_proxies(names)), BatchedEngine(ProxyEngine(get_proxies(names)))
    models = _models(cells, torch.float32, cells_per_stage=5)
    single.compute(models[0], batch, seeds[0])  # warm-up: lazy state, caches
    with Count():
        for m, seed in zip(models, seeds, strict=True):
            single.compute(m, batch, seed)
    one_at_a_time, Count.ops = Count.ops / len(cells), 0
    with Count():
        batched.compute(_models(cells, torch.float32, cells_per_stage=5), batch, seeds)
    # 0.55 measured (torch 2.13): 16 random cells still make several op groups per edge (bench/batched.py,
    # 64 architectures: 0.12).
    assert Count.ops / len(cells) < 0.7 * one_at_a_time


def test_only_networks_of_one_shape_batch_and_loose_end_spaces_do_not():
    from zcpipe.workers.batched.build import can_batch

    darts = get_space("nds-darts", width=4, depth=3)
    nets = [darts.build(darts.parse(c), BuildOptions()) for c in DARTS[:2]]
    assert can_batch(nets) and can_batch(_models(CELLS[:2], torch.float32))
    assert not can_batch([*nets, *_models(CELLS[:1], torch.float32)])  # two spaces
    wider = get_space("nds-darts", width=6, depth=3)
    assert not can_batch([*nets, wider.build(wider.parse(DARTS[0]), BuildOptions())])
    assert get_space("nb301").batches and get_space("nds-pnas").batches
    assert not get_space("nds-enas").batches  # loose ends: the output width differs by architecture


def test_batched_forward_keeps_each_architectures_batchnorm_to_its_own_images():
    # Two copies of one network with different BN affine weights: if statistics or channels leaked
    # between architectures, the copies' logits would change with the other's weights.
    models = _models(CELLS[:2], torch.float64)
    net = BatchedNB201(models).train()
    x = _batch(4, torch.float64).images
    together = net(x)
    for b, m in enumerate(models):
        alone = m.train()(x)
        assert torch.allclose(together[:, b], alone, rtol=1e-10, atol=1e-12)


def test_a_batched_network_is_made_on_its_device_from_networks_left_where_they_were_built():
    # A GPU actor builds its networks on the host and the batched network moves one copy per stacked
    # tensor, not one per tensor of every network. The meta device stands in for the GPU: a parameter,
    # buffer or index tensor left on the host would be on the CPU, and the forward would mix devices.
    from zcpipe.workers.batched.build import batched_network

    darts = get_space("nds-darts", width=4, depth=3)
    for models in (_models(CELLS[:3], torch.float32), [darts.build(darts.parse(c), BuildOptions()) for c in DARTS]):
        net = batched_network(models, "meta")
        tensors = [*net.parameters(), *net.buffers()]
        assert all(t.is_meta for t in tensors)
        indices = [layer.index for layer in net.layout.layers if layer.index is not None]
        indices += [index for _, _, index in net.batchnorms()]
        assert indices and all(i.is_meta for i in indices)
        assert len(tensors) < sum(len([*m.parameters(), *m.buffers()]) for m in models)
        assert not any(t.is_meta for m in models for t in [*m.parameters(), *m.buffers()])  # left as built
        assert net(torch.empty((2, 3, 32, 32), device="meta")).shape == (2, len(models), 10)


def test_values_are_refused_when_the_batched_layers_are_not_each_architectures_own_order():
    # Per-layer values are matched to an architecture's layers by position; a batched network that
    # stacked them in another order would file one layer's value under another's slot.
    from zcpipe.workers.batched.build import batched_network
    from zcpipe.workers.batched.engine import _check_order

    models = _models(CELLS[:2], torch.float32)
    net = batched_network(models)
    stats = [ProxyEngine(get_proxies(["snip"])).skeleton(m, _batch(2, torch.float32))[0] for m in models]
    _check_order(net.layout, stats)
    stats[1].layers[1], stats[1].layers[2] = stats[1].layers[2], stats[1].layers[1]
    with pytest.raises(RuntimeError, match="layer order differs from architecture 1"):
        _check_order(net.layout, stats)


def test_host_work_beside_a_pass_is_waited_for_with_a_bound_that_says_what_stalled(monkeypatch):
    from concurrent.futures import Future

    from zcpipe.workers.batched import engine

    monkeypatch.setattr(engine, "HOST_WORK_TIMEOUT_S", 0.05)
    with pytest.raises(RuntimeError, match=r"zen's draws did not finish in 0\.05 s"):
        engine._result(Future(), "zen's draws")  # never completes
    done = Future()
    done.set_exception(ValueError("a draw failed"))
    with pytest.raises(ValueError, match="a draw failed"):  # the thread's error reaches the pass
        engine._result(done, "zen's draws")


@pytest.mark.parametrize("momentum", [0.1, None])
def test_stacked_layers_built_from_their_tensors_compute_what_each_architectures_layer_does(momentum):
    # The stacked layers skip torch's constructors and keep torch's forward: a forward that reads an
    # attribute they did not set fails here, and so does a statistic or batch count kept wrongly
    # (momentum None averages over the count).
    gen = torch.Generator().manual_seed(0)
    convs = [torch.nn.Conv2d(4, 6, 3, padding=1, bias=False).double() for _ in range(3)]
    bns = [torch.nn.BatchNorm2d(6, momentum=momentum).double() for _ in range(3)]
    with torch.no_grad():
        for bn in bns:
            for t in (bn.weight, bn.bias, bn.running_mean):
                t.copy_(torch.randn(6, generator=gen, dtype=torch.float64))
            bn.running_var.uniform_(0.5, 2.0, generator=gen)
    conv, bn = StackedConv2d(convs), StackedBatchNorm2d(bns).train()
    x = torch.randn((5, 12, 8, 8), generator=gen, dtype=torch.float64)
    y = conv(x)
    assert torch.equal(y, torch.cat([c(xj) for c, xj in zip(convs, x.split(4, 1), strict=True)], 1))
    for _ in range(2):
        together = bn(y)
        alone = [b.train()(yj) for b, yj in zip(bns, y.split(6, 1), strict=True)]
    assert torch.allclose(together, torch.cat(alone, 1), rtol=1e-12, atol=1e-12)
    assert torch.allclose(bn.running_var, torch.cat([b.running_var for b in bns]), rtol=1e-12)
    assert torch.allclose(bn.running_mean, torch.cat([b.running_mean for b in bns]), rtol=1e-12, atol=1e-12)
    assert int(bn.num_batches_tracked) == 2
    evaluated = [b.eval()(yj) for b, yj in zip(bns, y.split(6, 1), strict=True)]
    assert torch.allclose(bn.eval()(y), torch.cat(evaluated, 1), rtol=1e-12, atol=1e-12)
    assert "StackedConv2d(12, 18" in repr(conv) and "StackedBatchNorm2d(18" in repr(bn)
    with pytest.raises(TypeError, match="without bias"):
        StackedConv2d([torch.nn.Conv2d(4, 6, 3)])


def _worker(arch_batch: int, device_share: int = 1, proxies: tuple[str, ...] = ()) -> ProxyWorker:
    rng = np.random.default_rng(0)
    images = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    cfg = WorkerConfig(
        space="nb201",
        proxies=("snip", "synflow", "nwot", "params", "flops", *proxies),
        space_params={"channels": 8, "cells_per_stage": 1},
        arch_batch=arch_batch,
        device_share=device_share,
    )
    return ProxyWorker(cfg, images, rng.integers(0, 10, 8), 10)


def test_worker_chunks_fail_one_bad_architecture_alone_and_match_one_at_a_time():
    archs = [(c, c) for c in CELLS[:3]]
    archs.insert(1, ("bad", "|nor_conv_3x3~0|+|banana~0|none~1|+|none~0|none~1|none~2|"))
    batched = _worker(arch_batch=4).compute_many(archs)
    single = _worker(arch_batch=1).compute_many(archs)
    assert [r.status for r in batched] == ["ok", "failed", "ok", "ok"]
    assert "banana" in batched[1].reason
    for got, ref in zip(batched, single, strict=True):
        if ref.stats is None:
            continue
        for name in ("params", "flops", "nwot"):  # exact counts; NASWOT codes of integers
            assert got.stats.values[name] == ref.stats.values[name]
        for name in ("snip", "synflow"):  # float32 rounding noise of the network (docs/proxies.md)
            assert math.isclose(got.stats.values[name], ref.stats.values[name], rel_tol=1e-2)


def test_a_worker_says_when_a_batched_pass_fails_and_a_pass_of_none_cells_does_not(caplog):
    # A pass that fails for all its architectures falls back to one at a time (slower, the same values):
    # said in the log, so a fault of the batched path cannot hide behind its fallback.
    zeros = [(c, c) for c in (CELLS[3], "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|")]
    with caplog.at_level("WARNING", logger="zcpipe.workers.worker"):
        records = _worker(arch_batch=2, proxies=("jacov",)).compute_many(zeros)
    assert [r.status for r in records] == ["partial", "partial"] and "batched pass" not in caplog.text
    worker = _worker(arch_batch=2)
    worker.batch = replace(worker.batch, labels=worker.batch.labels[:3])  # labels that do not fit the images
    with caplog.at_level("WARNING", logger="zcpipe.workers.worker"):
        worker.compute_many([(c, c) for c in CELLS[:2]])
    assert "a batched pass of 2 architectures failed" in caplog.text


def test_worker_sorts_passes_by_spec_and_returns_records_in_the_order_asked():
    # Out of spec order: the worker's passes are [avg, none] and [nor, skip], not the order given.
    archs = [(f"key{i}", c) for i, c in enumerate([CELLS[0], CELLS[3], CELLS[1], CELLS[2]])]
    batched = _worker(arch_batch=2).compute_many(archs)
    single = _worker(arch_batch=1).compute_many(archs)
    assert [r.arch for r in batched] == [key for key, _ in archs]
    assert [r.spec for r in batched] == [spec for _, spec in archs]
    for got, ref in zip(batched, single, strict=True):
        assert got.stats.reasons == ref.stats.reasons  # the none-only cell's NULLs stay with it
        for name in ("params", "flops", "nwot"):
            assert got.stats.values[name] == ref.stats.values[name]


def test_out_of_memory_halves_the_architectures_per_pass(tmp_path, monkeypatch):
    from zcpipe.settings import FAILPOINTS_ENV

    monkeypatch.setenv(FAILPOINTS_ENV, f"batched-oom={tmp_path / 'fired'}")
    worker = _worker(arch_batch=4)
    records = worker.compute_many([(c, c) for c in CELLS])
    assert (tmp_path / "fired").exists()
    assert worker.arch_batch == 2
    assert [r.status for r in records] == ["ok", "ok", "ok", "partial"]  # the `none` cell: nwot NULL


def test_processes_sharing_a_device_each_plan_their_arch_batch_for_their_part_of_its_memory(tmp_path):
    # K actors on one GPU start together and each sees nearly all its memory free: planning for all of it,
    # each would pick the largest B and all would run out of memory. A tiny network fits 64 per pass in
    # all of this machine's memory, and 1 in a millionth of it.
    from zcpipe.pipeline.ingest.config import IngestConfig

    archs = [(c, c) for c in CELLS[:2]]
    alone, crowded = _worker(arch_batch=0), _worker(arch_batch=0, device_share=10**6)
    alone.compute_many(archs)
    crowded.compute_many(archs)
    assert (alone.arch_batch, crowded.arch_batch) == (64, 1)
    # A cluster's address: its GPUs need not be this machine's.
    cfg = IngestConfig(space="nb201", store=str(tmp_path), limit=4, gpus=1, actors_per_gpu=4, ray_address="auto")
    assert cfg.worker_config("cuda", 1, None).device_share == 4
    assert cfg.worker_config("cpu", 1, None).device_share == 1


@pytest.mark.parametrize("arch_batch, expected", [(None, 1), (8, 8)])
def test_arch_batch_defaults_to_one_on_cpu_and_enters_the_hash_only_when_batched(tmp_path, arch_batch, expected):
    from zcpipe.pipeline.ingest.config import IngestConfig, config_hash

    cfg = IngestConfig(space="nb201", store=str(tmp_path), limit=4, arch_batch=arch_batch)
    assert cfg.batched_archs == expected
    single = IngestConfig(space="nb201", store=str(tmp_path), limit=4)
    same = config_hash(cfg.value_config("x")) == config_hash(single.value_config("x"))
    assert same == (expected == 1)
    assert IngestConfig(space="nb101", store=str(tmp_path), limit=4, arch_batch=8).batched_archs == 1
