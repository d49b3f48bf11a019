"""GPU paths: run where CUDA exists, skip cleanly elsewhere (CI has no GPU)."""

import math

import pytest
import torch

from zcpipe.workers.engine import ProxyEngine
from zcpipe.workers.proxies import DEFAULT_PROXIES, get_proxies
from zcpipe.workers.spaces import BuildOptions, get_space

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_gpu_values_match_cpu(cifar_batch):
    from zcpipe.workers.proxies import Batch

    torch.manual_seed(0)
    model = get_space("nb201").build(ARCH, BuildOptions())
    engine = ProxyEngine(get_proxies(list(DEFAULT_PROXIES)))
    cpu = engine.compute(model, cifar_batch, 0)
    gpu_batch = Batch(cifar_batch.images.cuda(), cifar_batch.labels.cuda(), 10, cifar_batch.sha256)
    gpu = engine.compute(model.cuda(), gpu_batch, 0)
    for name in DEFAULT_PROXIES:
        assert math.isfinite(gpu.values[name])
        # cuDNN picks other kernels than oneDNN: agreement to float32 accumulation, not bit for bit.
        assert gpu.values[name] == pytest.approx(cpu.values[name], rel=1e-3), name


def test_gpu_ingest_with_two_actors_per_gpu(tmp_path, ray_session):
    from zcpipe.pipeline import IngestConfig, ingest
    from zcpipe.store import Catalog

    cfg = IngestConfig(space="nb201", store=str(tmp_path), limit=6, gpus=1, actors_per_gpu=2, batch_size=16)
    summary = ingest(cfg, progress=False)
    assert (summary.done, summary.failed) == (6, 0)
    devices = Catalog(tmp_path).query("SELECT DISTINCT device FROM archs").to_pylist()
    assert len(devices) == 1 and devices[0]["device"] != "cpu"
