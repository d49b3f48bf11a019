"""GPU paths: run where CUDA exists, skip cleanly elsewhere (CI has no GPU).

The device and the CPU are compared in float64, where both compute the same function: every value and
layer within 1e-6 (relative; per layer, of the largest layer). Float32 differs by the network's own
rounding noise, which bench/gpu_check.py judges against float64 (docs/proxies.md, "Tolerances").
"""

import copy
import math

import pytest
import torch

from zcpipe.workers.device import configure_precision
from zcpipe.workers.engine import ProxyEngine
from zcpipe.workers.proxies import Batch, all_proxies, get_proxies
from zcpipe.workers.spaces import BuildOptions, get_space

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
NAMES = sorted(all_proxies())
TOL = 1e-6


def _cuda(batch: Batch) -> Batch:
    return Batch(batch.images.cuda(), batch.labels.cuda(), batch.num_classes, batch.sha256)


def _double(batch: Batch) -> Batch:
    return Batch(batch.images.double(), batch.labels, batch.num_classes, batch.sha256)


def _assert_close(gpu, cpu, names=NAMES):
    for name in names:
        assert (gpu.values[name] is None) == (cpu.values[name] is None), (name, gpu.reasons, cpu.reasons)
        if cpu.values[name] is None:
            continue
        assert math.isfinite(gpu.values[name]), name
        assert gpu.values[name] == pytest.approx(cpu.values[name], rel=TOL), name
        ref = [layer.values.get(name) for layer in cpu.layers]
        if ref[0] is None:
            continue  # an arch-only proxy
        scale = max(abs(v) for v in ref if v is not None) or 1.0
        got = [layer.values[name] for layer in gpu.layers]
        assert got == pytest.approx(ref, abs=TOL * scale, nan_ok=True), name


@pytest.mark.parametrize("space", ["nb201", "nds-darts"])
def test_gpu_values_match_cpu_for_every_proxy_and_layer(cifar_batch, space):
    configure_precision("cuda")
    s = get_space(space)
    arch = ARCH if space == "nb201" else s.sample(1, 0)[0]
    torch.manual_seed(0)
    model = s.build(arch, BuildOptions()).double()
    engine = ProxyEngine(get_proxies(NAMES))
    batch = _double(cifar_batch)
    cpu = engine.compute(copy.deepcopy(model), batch, 0)
    gpu = engine.compute(model.cuda(), _cuda(batch), 0)
    _assert_close(gpu, cpu)


def test_a_micro_batch_split_on_the_gpu_matches_the_same_split_on_the_cpu(cifar_batch):
    configure_precision("cuda")
    torch.manual_seed(0)
    model = get_space("nb201").build(ARCH, BuildOptions()).double()
    engine = ProxyEngine(get_proxies(NAMES), micro_batch=8)
    batch = _double(cifar_batch)
    cpu = engine.compute(copy.deepcopy(model), batch, 0)
    gpu = engine.compute(model.cuda(), _cuda(batch), 0)
    assert gpu.micro_batches == cpu.micro_batches == 4
    _assert_close(gpu, cpu)


def test_the_batched_path_on_the_gpu_equals_the_single_engine_on_the_cpu(cifar_batch):
    from zcpipe.workers.batched.engine import BatchedEngine

    configure_precision("cuda")
    space = get_space("nb201")
    cells = [ARCH, *space.sample(5, 1)]
    names = [n for n in NAMES if get_proxies([n])[0].pass_name != "own"]  # the batched passes
    models = []
    for i, cell in enumerate(cells):
        torch.manual_seed(i)
        models.append(space.build(cell, BuildOptions()).double())
    batch = _double(cifar_batch)
    single = ProxyEngine(get_proxies(names))
    cpu = [single.compute(copy.deepcopy(m), batch, 7) for m in models]
    gpu = BatchedEngine(ProxyEngine(get_proxies(names))).compute([m.cuda() for m in models], _cuda(batch), [7] * 6)
    for g, c in zip(gpu, cpu, strict=True):
        _assert_close(g, c, names)


def test_a_real_out_of_memory_error_splits_the_batch(cifar_batch):
    configure_precision("cuda")
    s = get_space("nb101")
    _, spec = s.key_and_spec(s.sample(1, 0)[0])
    torch.manual_seed(0)
    model = s.build(spec, BuildOptions()).cuda()
    batch = _cuda(cifar_batch)
    torch.cuda.empty_cache()
    whole = ProxyEngine(get_proxies(["grasp"])).compute(model, batch, 0)
    need = torch.cuda.max_memory_allocated()
    cap = torch.cuda.memory_allocated() + need // 4
    torch.cuda.set_per_process_memory_fraction(cap / torch.cuda.get_device_properties(0).total_memory)
    try:
        torch.cuda.empty_cache()
        split = ProxyEngine(get_proxies(NAMES)).compute(model, batch, 0)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert split.micro_batches > 1 and not split.reasons, split.reasons
    assert math.isfinite(split.values["grasp"]) and whole.micro_batches == 1


def test_gpu_ingest_with_two_actors_per_gpu(tmp_path, ray_session):
    from zcpipe.pipeline.ingest import IngestConfig, ingest
    from zcpipe.store import Catalog

    cfg = IngestConfig(space="nb201", store=str(tmp_path), limit=6, gpus=1, actors_per_gpu=2, batch_size=16)
    summary = ingest(cfg, progress=False)
    assert (summary.done, summary.failed) == (6, 0)
    devices = Catalog(tmp_path).query("SELECT DISTINCT device FROM archs").to_pylist()
    assert len(devices) == 1 and devices[0]["device"] != "cpu"
