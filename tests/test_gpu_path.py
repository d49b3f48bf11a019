"""The GPU path's behaviour that shows on a CPU: what the engine hands CUDA kernels, precision
settings, splitting on allocation failures, host syncs, the configuration of a GPU run, and the
driver's bounds on waiting. (Values on a real device: tests/test_gpu.py and bench/gpu_check.py.)"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

from zcpipe.workers.data import DataSpec, load_batch, to_batch
from zcpipe.workers.device import configure_precision, is_device_fault, is_out_of_memory
from zcpipe.workers.engine import ProxyEngine
from zcpipe.workers.proxies import Proxy, all_proxies, get_proxies
from zcpipe.workers.spaces import BuildOptions, get_space, tag

NB201_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _batch(n: int):
    images, labels, classes = load_batch(DataSpec("synthetic", None, n, 0))
    return to_batch(images, labels, classes, "cpu")


class _Calls(TorchDispatchMode):
    """Records every aten call made inside it (the ops CUDA kernels would receive)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[object, tuple]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls.append((func, args))
        return func(*args, **(kwargs or {}))


def test_grasp_hands_batch_norm_backward_a_weight_tensor_as_cuda_needs():
    # CUDA's native_batch_norm_backward allocates ∂γ and ∂β from the weight's options, so a missing
    # weight fails there (CPU tolerates it). Both the per-channel sums and a BatchNorm without affine
    # parameters must hand it a tensor.
    torch.manual_seed(0)
    net = get_space("nb201").build(NB201_CELL, BuildOptions())
    for m in net.modules():  # one BatchNorm without γ, β as well
        if isinstance(m, nn.BatchNorm2d):
            m.weight, m.bias, m.affine = None, None, False
            break
    with _Calls() as rec:
        stats = ProxyEngine(get_proxies(["grasp"])).compute(net, _batch(4), 0)
    assert math.isfinite(stats.values["grasp"])
    bn_backward = [args for func, args in rec.calls if func is torch.ops.aten.native_batch_norm_backward.default]
    assert bn_backward, "the GraSP pass did not reach BatchNorm's backward"
    assert all(isinstance(args[2], torch.Tensor) for args in bn_backward)


def test_cuda_float32_is_ieee_not_tf32():
    conv, matmul = torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
    try:
        torch.backends.cudnn.conv.fp32_precision = "tf32"  # Hopper's default for cuDNN convolutions
        assert configure_precision("cpu") == "fp32" and torch.backends.cudnn.conv.fp32_precision == "tf32"
        assert configure_precision("cuda") == "fp32-ieee"
        assert torch.backends.cudnn.conv.fp32_precision == "ieee"
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    finally:
        torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = conv, matmul


def test_errors_are_told_apart():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert is_out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate`"))
    assert not is_device_fault(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_device_fault(torch.AcceleratorError("CUDA error: an illegal memory access was encountered"))
    assert is_device_fault(RuntimeError("CUDA error: device-side assert triggered"))
    assert not is_device_fault(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


class _AllocFailsAbove(nn.Module):
    """A real network whose convolution fails as cuDNN does when more than `limit` images come at once."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.conv = tag(nn.Conv2d(3, 8, 3, padding=1), "conv", "conv3x3")
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.head = tag(nn.Linear(8, 10), "head", "linear")

    def features(self, x):
        if x.shape[0] > self.limit:
            raise RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED")
        return self.relu(self.bn(self.conv(x)))

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


def test_allocation_failures_split_the_data_pass_and_zen():
    torch.manual_seed(0)
    names = ["snip", "grad_norm", "fisher", "grasp", "jacov", "nwot", "zen"]
    stats = ProxyEngine(get_proxies(names)).compute(_AllocFailsAbove(8), _batch(32), 0)
    assert not stats.reasons, stats.reasons
    assert stats.micro_batches == 4  # 32 → 16 → 8
    assert all(math.isfinite(stats.values[n]) for n in names)


class _NeedsOneImage(Proxy):
    """A standalone pass that cannot split (synflow's kind) on a device that is always full."""

    name, scope, pass_name = "full", "arch", "synflow"

    def standalone(self, net, batch, ctx):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_in_a_pass_that_cannot_split_is_null_with_its_reason():
    torch.manual_seed(0)
    net = get_space("nb201").build(NB201_CELL, BuildOptions())
    stats = ProxyEngine([*get_proxies(["l2_norm"]), _NeedsOneImage()]).compute(net, _batch(4), 0)
    assert stats.values["full"] is None and "out of memory on cpu" in stats.reasons["full"]
    assert stats.values["l2_norm"] is not None  # the architecture's other values stand


class _ScalarReads(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:  # float(t), t.item(): a device sync each
            self.n += 1
        return func(*args, **(kwargs or {}))


def test_per_layer_values_cross_to_the_host_in_one_copy_not_one_sync_per_layer():
    torch.manual_seed(0)
    net = get_space("nds-darts").build(get_space("nds-darts").sample(1, 0)[0], BuildOptions())
    with _ScalarReads() as reads:
        stats = ProxyEngine(get_proxies(sorted(all_proxies()))).compute(net, _batch(2), 0)
    layer_proxies = sum(p.scope == "layer" for p in all_proxies().values())
    assert len(stats.layers) * layer_proxies > 1000
    assert reads.n <= 4, f"{reads.n} scalar reads for {len(stats.layers)} layers"


@pytest.mark.parametrize("momentum", [0.1, None])
def test_zen_draws_on_the_cpu_generator(momentum):
    # The draws, written out independently: weights in module order, then the two inputs, from one CPU
    # generator seeded with the proxy seed. A device generator gives another sample for that seed.
    # momentum None: BatchNorm's cumulative average, which reads the batch count zen's copy starts at 0.
    import copy

    from zcpipe.workers.proxies.zen import MIXUP_GAMMA

    torch.manual_seed(0)
    net = get_space("nb201").build(NB201_CELL, BuildOptions())
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = momentum
            m.num_batches_tracked.fill_(5)  # what earlier passes left: the copy must start from 0
    batch = _batch(8)
    got = ProxyEngine(get_proxies(["zen"])).compute(net, batch, 1234).values["zen"]

    ref = copy.deepcopy(net)
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                if m.weight is not None:
                    m.weight.fill_(1.0)
                    m.bias.zero_()
                m.reset_running_stats()
        ref.train()
        a = torch.randn(batch.images.shape, generator=gen)
        b = torch.randn(batch.images.shape, generator=gen)
        d = (ref.features(a) - ref.features(a + MIXUP_GAMMA * b)).abs().sum((1, 2, 3)).mean()
        bns = [m for m in ref.modules() if isinstance(m, nn.BatchNorm2d)]
        log_bn = sum(torch.log(torch.sqrt(m.running_var.mean())) for m in bns)
    assert got == pytest.approx(float(torch.log(d.double()) + log_bn), rel=1e-6)


def test_a_gpu_run_is_its_own_configuration_and_cpu_hashes_stand():
    from zcpipe.pipeline.ingest.config import IngestConfig, config_hash

    sha = "0" * 64
    cpu = IngestConfig(space="nb201", store="x", limit=1)
    placed_by_gpu = IngestConfig(space="nb201", store="x", limit=1, gpus=2, device="cpu", ray_address="r")
    gpu = IngestConfig(space="nb201", store="x", limit=1, gpus=1, ray_address="r")
    # The hash of this configuration before GPU runs had one of their own: existing stores keep theirs.
    assert config_hash(cpu.value_config(sha)) == config_hash(placed_by_gpu.value_config(sha)) == "5cdbe4f11e349863"
    values = gpu.value_config(sha)
    assert (values["device"], values["precision"]) == ("cuda", "fp32-ieee")
    assert config_hash(values) != config_hash(cpu.value_config(sha))


def test_the_plan_is_checked_against_each_node():
    from zcpipe.pipeline.ingest.runtime import ClusterTooSmallError, check_fits

    node = {"Alive": True, "Resources": {"CPU": 2.0, "GPU": 1.0}}
    check_fits(2, {"num_gpus": 0.5, "num_cpus": 1}, [node])
    check_fits(2, {"num_gpus": 1, "num_cpus": 1}, [node, dict(node)])
    with pytest.raises(ClusterTooSmallError, match="can place 1"):
        check_fits(2, {"num_gpus": 1, "num_cpus": 1}, [node])  # --gpus 2 on one GPU
    with pytest.raises(ClusterTooSmallError, match="can place 2"):
        check_fits(4, {"num_gpus": 0.25, "num_cpus": 1}, [node])  # --actors-per-gpu 4 on 2 CPUs
    with pytest.raises(ClusterTooSmallError, match="can place 0"):
        check_fits(1, {"num_gpus": 1, "num_cpus": 1}, [{"Alive": True, "Resources": {"CPU": 16.0}}])
    dead = {"Alive": False, "Resources": {"CPU": 8.0, "GPU": 8.0}}
    with pytest.raises(ClusterTooSmallError):
        check_fits(2, {"num_gpus": 1, "num_cpus": 1}, [node, dead])


def test_a_worker_raises_device_faults_and_records_other_failures(tmp_path, monkeypatch):
    from zcpipe.workers.device import DeviceFault
    from zcpipe.workers.failpoints import ENV
    from zcpipe.workers.worker import ProxyWorker, WorkerConfig

    images, labels, classes = load_batch(DataSpec("synthetic", None, 4, 0))
    worker = ProxyWorker(WorkerConfig(space="nb201", proxies=("l2_norm",)), images, labels, classes)
    assert worker.compute("|bogus|").status == "failed"  # an architecture's own failure: a row
    monkeypatch.setenv(ENV, f"device-fault={tmp_path / 'fired'}")
    with pytest.raises(DeviceFault, match="illegal memory access"):
        worker.compute(NB201_CELL)
    assert worker.compute(NB201_CELL).status == "ok"  # the failpoint fires once


def test_several_actors_on_a_gpu_without_mps_get_a_warning_that_says_what_to_run(tmp_path, monkeypatch):
    from zcpipe.workers.device import sharing_note

    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", str(tmp_path))
    note = sharing_note(4, "cuda")
    assert note and "nvidia-cuda-mps-control -d" in note and "\n" not in note
    assert sharing_note(1, "cuda") is None  # one actor per GPU has nothing to overlap
    assert sharing_note(4, "cpu") is None
    (tmp_path / "control").touch()  # the daemon's control pipe: MPS serves this node
    assert sharing_note(4, "cuda") is None


def test_micro_batch_splits_zen_as_it_splits_the_data_pass_and_the_row_says_so():
    from zcpipe.workers.proxies import ProxyContext

    net = get_space("nb201", channels=8, cells_per_stage=1).build(NB201_CELL, BuildOptions())
    batch = _batch(8)
    (zen,) = get_proxies(["zen"])
    split = ProxyEngine([zen], micro_batch=4).compute(net, batch, 5)
    whole = ProxyEngine([zen]).compute(net, batch, 5)
    assert split.micro_batches == 2 and whole.micro_batches == 1
    by_hand = zen.standalone(net, batch, ProxyContext(layers=[], generator_seed=5, micro_batch=4))
    assert split.values["zen"] == by_hand != whole.values["zen"]  # BatchNorm saw each half alone
