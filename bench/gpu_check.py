"""The device check: one command that proves the GPU path and measures it.

    python bench/gpu_check.py [--device cuda|cpu] [--out DIR] [--quick] [--parts ...] [--stop-after-s S]

It needs only torch, numpy and the checkout (no Ray, DuckDB, Zarr or pip install: without an
installed zcpipe it maps the stage folders into the package as pyproject.toml's `package-dir`
does), and the 64 real CIFAR-10 images in bench/data/cifar10-64.npz (the seed-0 batch that
`--data cifar10` draws from ../shared/data/cifar10/train_sample.npz). Parts:

  (a) values: the device against the CPU for every proxy, whole-network and per layer, on NB201,
      NDS-DARTS and NB101 cells, through the shared-pass engine and the one-at-a-time oracle;
  (b) determinism: the same cell twice on the device;
  (c) splitting: micro_batch=8 on the device against the CPU, and a forced out-of-memory error on
      an NB101 cell (CUDA only), which must end `ok` with micro_batches > 1;
  (d) speed: synchronised seconds per architecture on NB201 and DARTS cells, peak memory, and the
      ranking of the NB201 cells by every proxy against the CPU's;
  (e) concurrency: K worker processes on the one device, total architectures per second, without
      and (where `nvidia-cuda-mps-control` exists) under CUDA MPS, started and stopped here; and
      K batched-path processes under MPS, each with B from its share of the memory;
  (f) a profile of one DARTS architecture (per-proxy seconds, the top kernels);
  (g) a real `zcpipe ingest --gpus 1` where Ray, DuckDB and Zarr are installed;
  (h) the batched path, the 13 proxies: archs/s at B = 1, 16, 64, 256 on NB201 and 1, 16, 64 on NB301's
      network (DARTS cells, C=32), with the kernels per architecture and the GPU's busy fraction
      (profiler kernel time over wall time), and NB201's B=64 with the stacked convolutions run the other
      way (one kernel per architecture on a GPU); and zero-cost-nas's 7 measures computed its way (a fresh
      copy and passes of its own per measure, the engine's oracle) against the batched path;
  (i) float64 as the third reference: the device's float32 (single engine and batched path) and the
      CPU's against the CPU in float64,
      whole-network values and the ranking of the NB201 cells.

It prints one markdown table, writes it with the raw figures to DIR (gpu_check.md, .json,
profile.txt) after every part (a check stopped at a time limit keeps what it finished; with
--stop-after-s it starts no part after S seconds and ends on its own), and exits 1 when a target is
missed or a part was not run. The value target is float64's (part i): a
proxy passes when the device's float32, the single engine's and the batched path's, is at most 3x
farther from float64 than the CPU's float32 is (or within 1e-6 of it), and each ranks the NB201
cells against float64's ranking as well as the CPU does (Kendall τ at most 0.01 lower). The
device-vs-CPU differences of (a) are shown, not judged: both sides carry the network's float32
noise (docs/proxies.md). `--device cpu --quick` is the dry run the test suite runs so that this
script cannot rot.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH_NPZ = ROOT / "bench" / "data" / "cifar10-64.npz"


def _import_from_checkout() -> None:
    """Make `import zcpipe.workers` work from the checkout as it is, when zcpipe is not installed.

    pyproject.toml maps each `zcpipe.<stage>` to a top-level folder; the root package's search path
    is then its own folder plus the parents of the mapped folders.
    """
    try:
        if importlib.util.find_spec("zcpipe.workers") is not None:
            return
    except ImportError:
        pass
    import tomllib

    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    search = [str(ROOT / mapping["zcpipe"])]
    for name, folder in mapping.items():
        parts = name.split(".")
        path = ROOT / folder
        if len(parts) == 2:
            if path.name != parts[1]:
                raise SystemExit(f"error: pyproject maps {name} to {folder}, which a search path cannot express")
            search.append(str(path.parent))
        elif len(parts) > 2 and Path(mapping[".".join(parts[:-1])]) / parts[-1] != Path(folder):
            raise SystemExit(f"error: pyproject maps {name} to {folder}, outside its parent package's folder")
    spec = importlib.util.spec_from_file_location(
        "zcpipe", ROOT / mapping["zcpipe"] / "__init__.py", submodule_search_locations=list(dict.fromkeys(search))
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["zcpipe"] = module
    spec.loader.exec_module(module)


_import_from_checkout()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from zcpipe.workers import failpoints  # noqa: E402
from zcpipe.workers.batched import network  # noqa: E402
from zcpipe.workers.data import DataSpec, load_batch, to_batch  # noqa: E402
from zcpipe.workers.device import configure_precision, precision_settings, synchronize  # noqa: E402
from zcpipe.workers.engine import ArchStats, ProxyEngine  # noqa: E402
from zcpipe.workers.proxies import all_proxies, get_proxies  # noqa: E402
from zcpipe.workers.seeding import derive_seed  # noqa: E402
from zcpipe.workers.spaces import BuildOptions, get_space  # noqa: E402
from zcpipe.workers.worker import ProxyWorker, WorkerConfig  # noqa: E402

PROXIES = tuple(sorted(all_proxies()))
# The 13 proxies of issue 21's figures (NAS-Bench-Suite-Zero's, with l2_norm and zen).
THIRTEEN = ("params", "flops", "synflow", "snip", "grad_norm", "fisher", "grasp", "jacov", "epe_nas", "nwot",
            "plain", "l2_norm", "zen")  # fmt: skip
PARTS = ("values", "float64", "batched", "speed", "concurrency", "profile", "ingest")


@dataclass
class Sizes:
    batch: int = 64
    values: dict[str, int] = field(default_factory=lambda: {"nb201": 3, "nds-darts": 2, "nb101": 1})
    speed: dict[str, int] = field(default_factory=lambda: {"nb201": 30, "nds-darts": 6})
    workers: tuple[int, ...] = (1, 4, 8, 16)
    concurrency_cells: int = 32
    batched_workers: tuple[int, ...] = (4, 16)  # batched-path processes under MPS
    concurrency_batched_cells: int = 128
    arch_batches: tuple[int, ...] = (1, 16, 64, 256)
    darts_arch_batches: tuple[int, ...] = (1, 16, 64)
    darts: tuple[str, dict] = ("nb301", {})  # NB301's network (DARTS cells, C=32), the batched part's DARTS
    float64_cells: int = 16


QUICK = Sizes(  # the suite's dry run: every part runs, on the least that exercises it
    batch=4,
    values={"nb201": 1},  # the DARTS network's code path runs in the batched part (its smallest network)
    speed={"nb201": 2},
    workers=(1, 2),
    concurrency_cells=2,
    batched_workers=(2,),
    concurrency_batched_cells=4,
    arch_batches=(1, 2),
    darts_arch_batches=(1, 2),
    darts=("nds-darts", {"width": 4, "depth": 3}),  # the same code path on the smallest DARTS network
    float64_cells=2,
)


def cells(space: str, n: int) -> list[tuple[str, str]]:
    """`n` seeded (key, spec) pairs of `space`, the ones an ingest with --seed 0 --limit n plans."""
    s = get_space(space)
    return [s.key_and_spec(t) for t in s.sample(n, 0)]


def batch_arrays(size: int) -> tuple[np.ndarray, np.ndarray, int]:
    if not BATCH_NPZ.is_file():
        raise SystemExit(f"error: {BATCH_NPZ} is missing; it ships with the checkout (git checkout bench/data)")
    return load_batch(DataSpec("cifar10", str(BATCH_NPZ), size, 0))


def build(space: str, spec: str, key: str, options: BuildOptions) -> torch.nn.Module:
    torch.manual_seed(derive_seed(0, key))
    return get_space(space).build(spec, options)


def rel(a: float | None, b: float | None) -> float:
    """|a − b| / |b|; 0 for two NULLs, inf for one."""
    if a is None or b is None:
        return 0.0 if a is b else math.inf
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(b), 1e-300)


def layer_rel(dev: ArchStats, ref: ArchStats, name: str) -> float | None:
    """Largest per-layer difference, relative to the largest layer value; None for arch-only proxies."""
    pairs = [(d.values.get(name), r.values.get(name)) for d, r in zip(dev.layers, ref.layers, strict=True)]
    pairs = [(d, r) for d, r in pairs if r is not None or d is not None]
    if not pairs:
        return None
    if any((d is None) != (r is None) for d, r in pairs):
        return math.inf
    scale = max(abs(r) for _, r in pairs) or 1.0
    return max(abs(d - r) for d, r in pairs) / scale


# ---------------------------------------------------------------- (a) (b) (c) values


def part_values(device: str, sizes: Sizes, report: dict) -> None:
    images, labels, n_cls = batch_arrays(sizes.batch)
    cpu_batch, dev_batch = to_batch(images, labels, n_cls, "cpu"), to_batch(images, labels, n_cls, device)
    options = BuildOptions(num_classes=n_cls, input_shape=tuple(images.shape[1:]))
    engine = ProxyEngine(get_proxies(PROXIES))
    whole: dict[str, dict[str, float]] = {}
    layer: dict[str, dict[str, float]] = {}
    nulls: list[str] = []
    for space, count in sizes.values.items():
        for key, spec in cells(space, count):
            model = build(space, spec, key, options)
            for path, run in (("shared", engine.compute), ("oracle", engine.compute_one_at_a_time)):
                seed = derive_seed(0, key, "proxy")
                ref = run(model, cpu_batch, seed)
                # The CPU dry run compares the CPU with itself: once is enough (part (b) checks determinism).
                dev = ref if device == "cpu" else run(_on(model, device), dev_batch, seed)
                nulls += [f"{space} {path} {p}: {r}" for p, r in {**ref.reasons, **dev.reasons}.items()]
                for p in PROXIES:
                    w = whole.setdefault(path, {})
                    w[p] = max(w.get(p, 0.0), rel(dev.values.get(p), ref.values.get(p)))
                    lr = layer_rel(dev, ref, p)
                    if lr is not None:
                        lay = layer.setdefault(path, {})
                        lay[p] = max(lay.get(p, 0.0), lr)
    report["values"] = {"whole": whole, "layer": layer, "nulls": nulls}

    # (b) determinism: one cell twice on the device.
    key, spec = cells("nb201", 1)[0]
    model = _on(build("nb201", spec, key, options), device)
    first, second = (engine.compute(model, dev_batch, 7) for _ in range(2))
    report["determinism"] = {p: rel(second.values.get(p), first.values.get(p)) for p in PROXIES}

    # (c) splitting: micro-batches of 8 on the device against the same split on the CPU.
    split = ProxyEngine(get_proxies(PROXIES), micro_batch=min(8, sizes.batch // 2))
    model = build("nb201", spec, key, options)
    ref, dev = split.compute(model, cpu_batch, 7), split.compute(_on(model, device), dev_batch, 7)
    full = engine.compute(model, cpu_batch, 7)
    report["split"] = {
        "micro_batches": dev.micro_batches,
        "device_vs_cpu": {p: rel(dev.values.get(p), ref.values.get(p)) for p in PROXIES},
        # Not a target: BatchNorm sees each micro-batch alone, so batch statistics differ from the full batch.
        "split_vs_full_batch": {p: rel(dev.values.get(p), full.values.get(p)) for p in PROXIES},
    }
    report["forced_oom"] = forced_oom(device, sizes, dev_batch, options)


def _on(model: torch.nn.Module, device: str) -> torch.nn.Module:
    import copy

    return copy.deepcopy(model).to(device)


def forced_oom(device: str, sizes: Sizes, batch, options: BuildOptions) -> dict:
    """An NB101 cell under a memory cap below what its whole-batch data pass was measured to need."""
    if device != "cuda":
        return {"skipped": "needs CUDA (torch.cuda.set_per_process_memory_fraction)"}
    key, spec = cells("nb101", 1)[0]
    model = build("nb101", spec, key, options).to(device)
    engine = ProxyEngine(get_proxies(PROXIES))
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    whole = engine.compute(model, batch, 7)  # the peak of the unsplit passes, measured first
    need = torch.cuda.max_memory_allocated() - base
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    cap = base + 0.6 * need  # below the measured peak: the pass cannot run whole
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap / total))
    try:
        stats = engine.compute(model, batch, 7)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    return {
        "peak_gib": round(need / 2**30, 2),
        "unsplit_micro_batches": whole.micro_batches,
        "cap_gib": round(cap / 2**30, 2),
        "micro_batches": stats.micro_batches,
        "status": "partial" if stats.reasons else "ok",
        "reasons": stats.reasons,
    }


# ---------------------------------------------------------------- (d) speed and ranking


def timed_worker(device: str, space: str, archs: list[tuple[str, str]], batch: int, threads: int) -> dict:
    images, labels, n_cls = batch_arrays(batch)
    worker = ProxyWorker(
        WorkerConfig(space=space, proxies=PROXIES, device=device, threads=threads), images, labels, n_cls
    )
    worker.compute(*archs[0])  # warm-up (kernels, allocator, cuDNN plans); it is timed again below
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    records = []
    t0 = time.perf_counter()
    for key, spec in archs:
        t = time.perf_counter()
        r = worker.compute(key, spec)
        synchronize(device)
        records.append((r, time.perf_counter() - t))
    wall = time.perf_counter() - t0
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "archs": len(archs),
        "s_per_arch": wall / len(archs),
        "archs_per_s": len(archs) / wall,
        "peak_mib": round(peak, 1),
        "failed": sum(r.status == "failed" for r, _ in records),
        "values": {k: (r.stats.values if r.stats else {}) for (k, _), (r, _) in zip(archs, records, strict=True)},
    }


def kendall(a: list[float], b: list[float]) -> float:
    n, s = len(a), 0
    for i in range(n):
        for j in range(i + 1, n):
            s += np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
    return 2 * s / (n * (n - 1)) if n > 1 else 1.0


def part_speed(device: str, sizes: Sizes, report: dict) -> None:
    speed = {}
    for space, n in sizes.speed.items():
        speed[space] = timed_worker(device, space, cells(space, n), sizes.batch, 1)
    report["speed"] = {s: {k: v for k, v in r.items() if k != "values"} for s, r in speed.items()}
    # The same NB201 cells on the CPU (every core): does the device rank them the same way?
    archs = cells("nb201", sizes.speed["nb201"])
    cpu = timed_worker("cpu", "nb201", archs, sizes.batch, os.cpu_count() or 1) if device != "cpu" else speed["nb201"]
    dev_v, cpu_v = speed["nb201"]["values"], cpu["values"]
    ranking = {}
    for p in PROXIES:
        keys = [k for k, _ in archs if dev_v[k].get(p) is not None and cpu_v[k].get(p) is not None]
        d, c = [dev_v[k][p] for k in keys], [cpu_v[k][p] for k in keys]
        ranking[p] = {"same_order": list(np.argsort(d, kind="stable")) == list(np.argsort(c, kind="stable")),
                      "kendall": kendall(d, c), "n": len(keys)}  # fmt: skip
    report["ranking"] = ranking


# ---------------------------------------------------------------- (e) concurrency


def _concurrent_worker(device, archs, batch, barrier, out, k: int, batched: bool) -> None:
    images, labels, n_cls = batch_arrays(batch)
    if batched:  # as an ingest actor among k on one GPU: the 13 proxies, B from its share of the memory
        cfg = WorkerConfig(space="nb201", proxies=THIRTEEN, device=device, arch_batch=0, device_share=k)
    else:
        cfg = WorkerConfig(space="nb201", proxies=PROXIES, device=device)
    worker = ProxyWorker(cfg, images, labels, n_cls)
    worker.compute_many(archs[:2])  # warm-up outside the timed window (and the batched path's B chosen)
    barrier.wait(timeout=600)
    t0 = time.perf_counter()
    worker.compute_many(archs)
    synchronize(device)
    out.put((t0, time.perf_counter(), worker.arch_batch))


def _k_processes(device: str, archs: list, k: int, batch: int, batched: bool = False) -> dict:
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    barrier, out = ctx.Barrier(k), ctx.Queue()
    share = [archs[i::k] for i in range(k)]
    procs = [ctx.Process(target=_concurrent_worker, args=(device, s, batch, barrier, out, k, batched)) for s in share]
    for p in procs:
        p.start()
    spans = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    wall = max(e for _, e, _ in spans) - min(s for s, _, _ in spans)
    row = {"archs": len(archs), "wall_s": round(wall, 2), "archs_per_s": len(archs) / wall}
    if batched:
        row["arch_batch"] = sorted({b for _, _, b in spans})
    return row


def _mps_daemon(tmp: Path):
    """Start a CUDA MPS control daemon with its own pipe and log folders; returns the stop function."""
    env = dict(os.environ, CUDA_MPS_PIPE_DIRECTORY=str(tmp / "pipe"), CUDA_MPS_LOG_DIRECTORY=str(tmp / "log"))
    for d in ("pipe", "log"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    subprocess.run(["nvidia-cuda-mps-control", "-d"], env=env, check=True, timeout=60)
    os.environ.update(CUDA_MPS_PIPE_DIRECTORY=env["CUDA_MPS_PIPE_DIRECTORY"])  # the workers inherit it

    def stop() -> None:
        subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, env=env, timeout=60, check=False)
        os.environ.pop("CUDA_MPS_PIPE_DIRECTORY", None)

    return stop


def part_concurrency(device: str, sizes: Sizes, report: dict, out_dir: Path | None = None) -> None:
    """K single-engine processes without and under MPS; then K batched-path processes under MPS, each
    choosing its B from its share of the GPU's memory (as `--actors-per-gpu K` ingest actors do):
    whether the batched path still gains from K > 1."""
    archs = cells("nb201", sizes.concurrency_cells)
    rows = {}
    for k in sizes.workers:
        if device == "cpu" and k > (os.cpu_count() or 1):
            rows[f"K={k}"] = {"skipped": f"{k} processes on {os.cpu_count()} cores"}
            continue
        rows[f"K={k}"] = _k_processes(device, archs, k, sizes.batch)
    if device == "cuda" and shutil.which("nvidia-cuda-mps-control"):
        stop = _mps_daemon((out_dir or Path("/tmp")) / "mps")
        try:
            for k in sizes.workers:
                rows[f"K={k} MPS"] = _k_processes(device, archs, k, sizes.batch)
            many = cells("nb201", sizes.concurrency_batched_cells)
            for k in sizes.batched_workers:
                rows[f"K={k} MPS, batched"] = _k_processes(device, many, k, sizes.batch, batched=True)
        finally:
            stop()
    else:
        rows["MPS"] = {"skipped": "no CUDA device or no nvidia-cuda-mps-control here"}
        if device == "cpu":  # the dry run: the batched processes' code path, without MPS
            many = cells("nb201", sizes.concurrency_batched_cells)
            for k in sizes.batched_workers:
                rows[f"K={k}, batched"] = _k_processes(device, many, k, sizes.batch, batched=True)
    report["concurrency"] = rows


# ---------------------------------------------------------------- (h) batched path, (i) float64


def _busy(device: str, fn) -> dict:
    """Kernels launched and the device's busy fraction (kernel time over wall time) while `fn` runs;
    on the CPU, the operators dispatched (bench/batched.py's counter)."""
    from batched import OpCounter  # bench/ is this script's folder
    from torch.profiler import ProfilerActivity, profile

    if device != "cuda":
        counter = OpCounter()
        with counter:
            fn()
        return {"kernels": counter.ops, "busy": None}
    synchronize(device)
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        synchronize(device)
    wall = time.perf_counter() - t0
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    busy_us = sum(e.device_time for e in kernels)
    return {"kernels": len(kernels), "busy": busy_us / 1e6 / wall}


def part_batched(device: str, sizes: Sizes, report: dict) -> None:
    """The batched path's archs/s, kernels per architecture and busy fraction on NB201 and on NB301's
    network, for the issue's 13 proxies (the later ones run per architecture inside a chunk and would
    only dilute what this part measures)."""
    images, labels, n_cls = batch_arrays(sizes.batch)
    rows = {}
    darts, darts_params = sizes.darts
    for space, params, arch_batches in (
        ("nb201", {}, sizes.arch_batches),
        (darts, darts_params, sizes.darts_arch_batches),
    ):
        n = max(arch_batches)
        archs = cells(space, max(n, 2))
        for b in arch_batches:
            todo = archs[: max(b, min(n, 64))]
            rows[f"{space} B={b}"] = _batched_row(device, (space, params), todo, b, images, labels, n_cls)
    # The other way to run a stacked convolution, at NB201's B=64: one kernel per architecture where
    # this device runs grouped kernels (a GPU), grouped where it runs one per architecture (the CPU).
    # cuDNN's grouped kernels for many small groups may be slower than the launches they save: this
    # row says which `GROUPED_CONV_DEVICES` should list the device.
    b = min(64, max(sizes.arch_batches))
    grouped = device in network.GROUPED_CONV_DEVICES
    network.GROUPED_CONV_DEVICES.symmetric_difference_update({device})
    try:
        todo = cells("nb201", max(b, 2))
        label = f"nb201 B={b}, {'one convolution per architecture' if grouped else 'grouped convolutions'}"
        rows[label] = _batched_row(device, ("nb201", {}), todo, b, images, labels, n_cls)
    finally:
        network.GROUPED_CONV_DEVICES.symmetric_difference_update({device})
    report["batched"] = rows
    report["zero_cost_nas_way"] = _zero_cost_nas_way(device, sizes, images, labels, n_cls)


# zero-cost-nas's measures (foresight/pruners/measures/) among ours: what its side-by-side figure compared.
ZC_NAS_SEVEN = ("grad_norm", "snip", "grasp", "fisher", "jacov", "plain", "synflow")


def _zero_cost_nas_way(device: str, sizes: Sizes, images, labels, n_cls: int) -> dict:
    """Seconds per NB201 architecture for zero-cost-nas's seven measures computed its way (a fresh copy
    and passes of its own per measure: the engine's oracle, `compute_one_at_a_time`) against the batched
    path at the largest B, on the same cells, weights and images. zero-cost-nas itself is not installed
    on the device machine (no network); the oracle follows its per-measure procedure and is tested
    equal to the shared engine."""
    n = max(sizes.arch_batches)
    archs = cells("nb201", max(n, 2))
    slow = archs[: min(len(archs), 8 if device == "cuda" else 1)]
    options = BuildOptions(num_classes=n_cls, input_shape=tuple(images.shape[1:]))
    batch = to_batch(images, labels, n_cls, device)
    engine = ProxyEngine(get_proxies(ZC_NAS_SEVEN))
    models = [_on(build("nb201", spec, key, options), device) for key, spec in slow]
    engine.compute_one_at_a_time(models[0], batch, 0)  # warm-up
    synchronize(device)
    t0 = time.perf_counter()
    for (key, _), m in zip(slow, models, strict=True):
        engine.compute_one_at_a_time(m, batch, derive_seed(0, key, "proxy"))
    synchronize(device)
    oracle = (time.perf_counter() - t0) / len(slow)
    cfg = WorkerConfig(space="nb201", proxies=ZC_NAS_SEVEN, device=device, arch_batch=n)
    worker = ProxyWorker(cfg, images, labels, n_cls)
    worker.compute_many(archs[: min(n, 4)])  # warm-up
    t0 = time.perf_counter()
    worker.compute_many(archs[:n])
    synchronize(device)
    batched = (time.perf_counter() - t0) / n
    return {"oracle_s_per_arch": oracle, "batched_s_per_arch": batched, "arch_batch": worker.arch_batch,
            "ratio": oracle / batched}  # fmt: skip


def _batched_row(device: str, space: tuple[str, dict], todo: list, b: int, images, labels, n_cls: int) -> dict:
    cfg = WorkerConfig(space=space[0], space_params=space[1], proxies=THIRTEEN, device=device, arch_batch=b)
    worker = ProxyWorker(cfg, images, labels, n_cls)
    records_of: list = []
    if device == "cuda":
        worker.compute_many(todo[: min(b, 4)])  # warm-up (kernels, allocator, cuDNN plans)
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    if device == "cuda":
        records = worker.compute_many(todo)
        synchronize(device)
    else:  # on the CPU the operator count rides along the timed run (a counter costs little there)
        counted = _busy(device, lambda: records_of.append(worker.compute_many(todo)))
        records = records_of.pop()
    wall = time.perf_counter() - t0
    if device == "cuda":
        chunk = todo[: worker.arch_batch]
        busy = _busy(device, lambda: worker.compute_many(chunk))
        per_arch = busy["kernels"] / len(chunk)
    else:
        busy, per_arch = counted, counted["kernels"] / len(todo)
    return {
        "archs": len(todo),
        "archs_per_s": len(todo) / wall,
        "arch_batch_after": worker.arch_batch,  # out of memory halves it
        "failed": sum(r.status == "failed" for r in records),
        "kernels_per_arch": per_arch,
        "busy": busy["busy"],
        "peak_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None,
    }


def part_float64(device: str, sizes: Sizes, report: dict) -> None:
    """The device's and the CPU's float32 against the CPU's float64, per proxy (the tolerance target):
    the single engine on the device, and the batched path on the device (all the cells in one pass,
    its grouped convolutions: on the CPU oneDNN's grouped kernels rounded 7-10x worse, docs/proxies.md)."""
    import copy

    from zcpipe.workers.batched.engine import BatchedEngine

    images, labels, n_cls = batch_arrays(sizes.batch)
    cpu32 = to_batch(images, labels, n_cls, "cpu")
    cpu64 = to_batch(images.astype(np.float64), labels, n_cls, "cpu")
    dev32 = to_batch(images, labels, n_cls, device)
    options = BuildOptions(num_classes=n_cls, input_shape=tuple(images.shape[1:]))
    engine = ProxyEngine(get_proxies(PROXIES))
    values: dict[str, dict[str, list]] = {"f64": {}, "cpu": {}, "device": {}, "batched": {}}
    archs = cells("nb201", sizes.float64_cells)
    seeds = [derive_seed(0, key, "proxy") for key, _ in archs]
    models = [_on(build("nb201", spec, key, options), device) for key, spec in archs]
    for st in BatchedEngine(engine).compute(models, dev32, seeds):
        for p in PROXIES:
            values["batched"].setdefault(p, []).append(st.values.get(p))
    del models
    for key, spec in archs:
        model = build("nb201", spec, key, options)
        seed = derive_seed(0, key, "proxy")
        runs = {
            "f64": engine.compute(copy.deepcopy(model).double(), cpu64, seed),
            "cpu": engine.compute(model, cpu32, seed),
        }
        # The dry run's "device" is the CPU: its float32 values are the CPU's.
        runs["device"] = runs["cpu"] if device == "cpu" else engine.compute(_on(model, device), dev32, seed)
        for name, st in runs.items():
            for p in PROXIES:
                values[name].setdefault(p, []).append(st.values.get(p))
    rows = {}
    for p in PROXIES:
        keep = [i for i, v in enumerate(values["f64"][p]) if v is not None]
        ref = [values["f64"][p][i] for i in keep]
        row = {}
        for side in ("cpu", "device", "batched"):
            got = [values[side][p][i] for i in keep]
            if not keep or any(v is None for v in got):
                row[side] = {"max_rel": 0.0 if not keep else math.inf, "tau": 1.0 if not keep else math.nan}
                continue
            row[side] = {"max_rel": max(rel(v, r) for v, r in zip(got, ref, strict=True)), "tau": kendall(got, ref)}
        c = row["cpu"]
        row["passes_by_side"] = {
            side: row[side]["max_rel"] <= max(3 * c["max_rel"], 1e-6) and row[side]["tau"] >= c["tau"] - 0.01
            for side in ("device", "batched")
        }
        # The dry run's batched side is the CPU's (2 cells: too few to judge a signed sum's largest
        # difference); `bench/batched.py --parts float32` judges it over 16.
        judged = ("device", "batched") if device != "cpu" else ("device",)
        row["passes"] = all(row["passes_by_side"][side] for side in judged)
        rows[p] = row
    report["float64"] = rows


# ---------------------------------------------------------------- (f) profile, (g) ingest


def part_profile(device: str, sizes: Sizes, out_dir: Path, report: dict) -> None:
    from torch.profiler import ProfilerActivity, profile

    images, labels, n_cls = batch_arrays(sizes.batch)
    batch = to_batch(images, labels, n_cls, device)
    space = "nb201" if sizes is QUICK else "nds-darts"  # the dry run profiles the cheaper network
    key, spec = cells(space, 1)[0]
    options = BuildOptions(num_classes=n_cls, input_shape=tuple(images.shape[1:]))
    model = build(space, spec, key, options).to(device)
    engine = ProxyEngine(get_proxies(PROXIES))
    engine.compute(model, batch, 1)  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        stats = engine.compute(model, batch, 1)
        synchronize(device)
    sort = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=15)
    (out_dir / "profile.txt").write_text(table)
    report["profile"] = {"space": space, "arch": key, "seconds": {k: round(v, 4) for k, v in stats.seconds.items()}}


def part_ingest(device: str, out_dir: Path, report: dict) -> None:
    missing = [m for m in ("ray", "duckdb", "zarr", "polars", "typer") if importlib.util.find_spec(m) is None]
    if missing:
        report["ingest"] = {"skipped": f"{', '.join(missing)} not installed here"}
        return
    if device != "cuda":
        report["ingest"] = {"skipped": "--device cpu (CPU ingests run in the test suite)"}
        return
    store = out_dir / "ingest-store"
    cmd = [sys.executable, "-m", "zcpipe.cli", "ingest", "--space", "nb201", "--limit", "8", "--gpus", "1",
           "--data", "cifar10", "--data-root", str(BATCH_NPZ), "--store", str(store), "--no-progress"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    report["ingest"] = {"returncode": r.returncode, "summary": (r.stderr.strip().splitlines() or [""])[-1]}


# ---------------------------------------------------------------- report


def verdict(report: dict) -> list[str]:
    """The targets that were missed (empty: all met); a part that raised is a miss."""
    missed = [f"part {name} raised {err.splitlines()[-1]}" for name, err in report.get("errors", {}).items()]
    if report.get("parts_not_run"):  # a report saved part-way (the check was stopped after it)
        missed.append(f"parts not run: {', '.join(report['parts_not_run'])}")
    for p, row in report.get("float64", {}).items():
        if not row["passes"]:
            c, d, b = row["cpu"], row["device"], row["batched"]
            missed.append(
                f"{p} vs float64: device {d['max_rel']:.1e} (τ {d['tau']:.3f}), batched {b['max_rel']:.1e} "
                f"(τ {b['tau']:.3f}), CPU {c['max_rel']:.1e} (τ {c['tau']:.3f})"
            )
    oom = report.get("forced_oom", {"skipped": "not run"})
    if "skipped" not in oom and (oom["status"] != "ok" or oom["micro_batches"] <= 1):
        missed.append("forced out-of-memory did not split to an ok row")
    failed = [b for b, r in report.get("batched", {}).items() if r["failed"]]
    missed += [f"batched {b}: architectures failed" for b in failed]
    return missed


def _f(x) -> str:
    return "—" if x is None else ("0" if x == 0 else f"{x:.1e}")


def _value_rows(report: dict) -> list[str]:
    lines = [
        "| proxy | whole shared | whole oracle | layer shared | layer oracle | twice | split vs CPU | "
        "rank τ vs CPU | CPU f32 vs f64 (τ) | device f32 vs f64 (τ) | batched f32 vs f64 (τ) | passes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    v = report.get("values", {"whole": {}, "layer": {}})
    for p in PROXIES:
        r = report.get("ranking", {}).get(p, {})
        f64 = report.get("float64", {}).get(p)
        tail = "— | — | — | —"
        if f64:
            c, d, b = f64["cpu"], f64["device"], f64["batched"]
            tail = (f"{_f(c['max_rel'])} ({c['tau']:.3f}) | {_f(d['max_rel'])} ({d['tau']:.3f}) | "
                    f"{_f(b['max_rel'])} ({b['tau']:.3f}) | {'yes' if f64['passes'] else 'NO'}")  # fmt: skip
        lines.append(
            f"| {p} | {_f(v['whole'].get('shared', {}).get(p))} | {_f(v['whole'].get('oracle', {}).get(p))} | "
            f"{_f(v['layer'].get('shared', {}).get(p))} | {_f(v['layer'].get('oracle', {}).get(p))} | "
            f"{_f(report.get('determinism', {}).get(p))} | "
            f"{_f(report.get('split', {}).get('device_vs_cpu', {}).get(p))} | "
            f"{r.get('kendall', math.nan):.3f} | {tail} |"
        )
    return lines


def markdown(report: dict) -> str:
    env = report["env"]
    lines = [
        f"# gpu_check: {env['device_name']} ({env['device']}), torch {env['torch']}, batch {env['batch']}, "
        f"float32 {env['precision']}",
        "",
        *_value_rows(report),
        "",
        "| part | figure |",
        "| --- | --- |",
    ]
    for space, s in report.get("speed", {}).items():
        lines.append(f"| single engine {space} | {s['s_per_arch']:.3f} s/arch ({s['archs_per_s']:.1f} archs/s) over "
                     f"{s['archs']} archs, peak {s['peak_mib']:.0f} MiB, {s['failed']} failed |")  # fmt: skip
    for b, r in report.get("batched", {}).items():
        busy = "" if r["busy"] is None else f", GPU busy {100 * r['busy']:.0f} %"
        lines.append(
            f"| batched {b} | {r['archs_per_s']:.1f} archs/s over {r['archs']} archs (B after OOM halving "
            f"{r['arch_batch_after']}), {r['kernels_per_arch']:,.0f} kernels/arch{busy}, {r['failed']} failed |"
        )
    zc = report.get("zero_cost_nas_way")
    if zc:
        lines.append(
            f"| zero-cost-nas's 7 measures its way (fresh copy per measure) vs batched B={zc['arch_batch']} | "
            f"{zc['oracle_s_per_arch']:.3f} vs {zc['batched_s_per_arch']:.4f} s/arch: **{zc['ratio']:.1f}x** |"
        )
    for k, c in report.get("concurrency", {}).items():
        text = c.get("skipped") or f"{c['archs_per_s']:.1f} archs/s total ({c['archs']} NB201 archs, {c['wall_s']} s)"
        if "arch_batch" in c:
            text += f", B chosen {'/'.join(map(str, c['arch_batch']))}"
        lines.append(f"| {k} worker processes | {text} |")
    if "split" in report:
        lines.append(f"| split micro_batch=8 | {report['split']['micro_batches']} micro-batches |")
    oom = report.get("forced_oom", {"skipped": "not run"})
    split = oom.get("skipped") or (
        f"peak {oom['peak_gib']} GiB unsplit, cap {oom['cap_gib']} GiB: status {oom['status']}, "
        f"{oom['micro_batches']} micro-batches"
    )
    lines.append(f"| forced out of memory (NB101) | {split} |")
    if "profile" in report:
        passes = ", ".join(f"{k} {v}" for k, v in report["profile"]["seconds"].items())
        lines.append(f"| {report['profile']['space']} profile (s per pass) | {passes} |")
    ing = report.get("ingest", {"skipped": "not run"})
    lines.append(f"| zcpipe ingest --gpus 1 | {ing.get('skipped') or ing['summary']} |")
    nulls = report.get("values", {}).get("nulls")
    if nulls:
        lines.append(f"| NULL values | {'; '.join(nulls[:5])} |")
    missed = verdict(report)
    lines += ["", "verdict: " + ("all targets met" if not missed else "MISSED " + "; ".join(missed))]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu-check")
    ap.add_argument("--quick", action="store_true", help="small sizes (the test suite's dry run)")
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts to run")
    ap.add_argument(
        "--stop-after-s",
        type=float,
        default=None,
        help="start no part after this many seconds (under a time limit: the check ends on its own, its MPS "
        "daemon stopped, and reports the parts it did not run)",
    )
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA device; use --device cpu for the dry run", file=sys.stderr)
        return 2
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        print(f"error: unknown part(s) {', '.join(sorted(unknown))}; parts are {', '.join(PARTS)}", file=sys.stderr)
        return 2
    sizes = QUICK if args.quick else Sizes()
    args.out.mkdir(parents=True, exist_ok=True)
    precision = configure_precision(args.device)
    report: dict = {
        "env": {
            "device": args.device,
            "device_name": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "batch": sizes.batch,
            "precision": f"{precision} {precision_settings()}" if args.device == "cuda" else precision,
            "cpus": os.cpu_count(),
        },
        "errors": {},
    }
    runs = {
        "values": lambda: part_values(args.device, sizes, report),
        "float64": lambda: part_float64(args.device, sizes, report),
        "batched": lambda: part_batched(args.device, sizes, report),
        "speed": lambda: part_speed(args.device, sizes, report),
        "concurrency": lambda: part_concurrency(args.device, sizes, report, args.out),
        "profile": lambda: part_profile(args.device, sizes, args.out, report),
        "ingest": lambda: part_ingest(args.device, args.out, report),
    }
    todo = args.parts.split(",")
    report["part_seconds"] = {}
    report["parts_not_run"] = todo
    text = save(report, args.out)
    start = time.perf_counter()
    for i, name in enumerate(todo):
        if args.stop_after_s is not None and time.perf_counter() - start >= args.stop_after_s:
            print(f"# {args.stop_after_s:g} s have passed: not starting {', '.join(todo[i:])}", file=sys.stderr)
            break
        failpoints.hold("gpu-check", name)  # tests stop the check here to see what a killed one leaves
        t0 = time.perf_counter()
        try:
            runs[name]()
        except Exception:  # one part's failure must not hide the others' figures
            report["errors"][name] = traceback.format_exc()
            print(report["errors"][name], file=sys.stderr, flush=True)
        report["part_seconds"][name] = round(time.perf_counter() - t0, 1)
        print(f"# {name} done in {report['part_seconds'][name]} s", file=sys.stderr, flush=True)
        # Written after every part: a check stopped at the device call's time limit still brings back
        # the figures of the parts it finished.
        report["parts_not_run"] = todo[i + 1 :]
        text = save(report, args.out)
    print(text)
    return 1 if verdict(report) else 0


def save(report: dict, out: Path) -> str:
    """Write the report (gpu_check.md and .json) as it stands, each file replaced whole; its table."""
    text = markdown(report)
    for name, content in (("gpu_check.md", text), ("gpu_check.json", json.dumps(report, indent=1, default=str))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(content)
        tmp.replace(out / name)
    return text


if __name__ == "__main__":
    sys.exit(main())
