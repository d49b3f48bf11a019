"""The batched path against the single-architecture engine: kernels, speed and float32 faithfulness.

    python bench/batched.py [--space nb201|nb301] [--cells 16] [--arch-batch 4,8] [--threads 2] [--device cpu]

Three figures, each measured in this run against the single engine on the same cells, images and
weights (the seeded cells of --space an ingest with --seed 0 plans, NB201 by default, NB301's C=32
DARTS network with `nb301`; the 64 real CIFAR-10 images in bench/data/cifar10-64.npz):

  kernels  operators dispatched per architecture (a `TorchDispatchMode` counter; views, which launch
           nothing, are not counted), single engine vs batched at B = 1, 16, 64 (stacked convolutions
           counted as the GPU's one grouped kernel each); a count does not
           depend on the number of images, so this part uses 2 of them;
  speed    architectures per second through `ProxyWorker.compute_many` (what ingest actors run),
           B = 1 (the single engine) and each --arch-batch, with the ratio to B = 1; on the seeded
           sample, or with `--order sorted-sample` on consecutive cells of a 3,000-cell sample in spec
           order (a chunk as a batched ingest plans it), or with `--order enumerated` on consecutive
           cells of the space's enumeration (a chunk of a whole-space ingest);
  breakdown  the single engine's operators per architecture for one proxy set at a time (not run by
           default): where its launches go;
  host     milliseconds per architecture on a batch whose kernels cost next to nothing (2 images of
           8x8, networks of 4 channels at the stem: the same layers and operators), single engine vs
           batched at --host-sizes (cells of --order, sorted as a worker sorts a chunk), stacked
           convolutions grouped as on a GPU (not run by default): the host's share (dispatch and
           Python), with and without building each network (the space's `build`, which an ingest
           actor runs too), which bounds what one GPU actor can reach whatever its kernels cost;
  float32  each engine's float32 values against the single engine in float64 (the third reference):
           the largest relative difference per proxy, and Kendall τ of the cells' ranking against
           float64's. The batched path passes where it is no farther from float64 than 3x the single
           engine's float32 and ranks the cells as well.

The 13 proxies of the device check by default; --proxies to change.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from zcpipe.workers.batched import network
from zcpipe.workers.batched.engine import BatchedEngine
from zcpipe.workers.collector import collect_less_often
from zcpipe.workers.data import DataSpec, load_batch, to_batch
from zcpipe.workers.device import synchronize
from zcpipe.workers.engine import ProxyEngine
from zcpipe.workers.proxies import Batch, get_proxies
from zcpipe.workers.seeding import derive_seed
from zcpipe.workers.spaces import BuildOptions, get_space
from zcpipe.workers.worker import ProxyWorker, WorkerConfig

ROOT = Path(__file__).resolve().parents[1]
BATCH_NPZ = ROOT / "bench" / "data" / "cifar10-64.npz"
THIRTEEN = ("params", "flops", "synflow", "snip", "grad_norm", "fisher", "grasp", "jacov", "epe_nas", "nwot",
            "plain", "l2_norm", "zen")  # fmt: skip


class OpCounter(TorchDispatchMode):
    """Counts the operators that reach a kernel: not views (they only re-describe memory), not
    operators on the meta device (the count pass's shape-only forward launches nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        meta = any(isinstance(a, torch.Tensor) and a.is_meta for a in tree_leaves((args, kwargs or {}, out)))
        if not func.is_view and not meta:
            self.ops += 1
        return out


SPACE = "nb201"  # --space sets it


def _cells(n: int, order: str = "sample") -> list[str]:
    """`n` seeded cells; `n` consecutive cells of a seeded 3,000-cell sample in spec order (a chunk as a
    batched ingest of that sample plans it); or `n` consecutive cells of the enumeration from a seeded
    start (a chunk of a whole-space ingest)."""
    space = get_space(SPACE)
    if order == "sample":
        return space.sample(n, 0)
    if order == "sorted-sample":
        plan = sorted(space.sample(max(n, 3000), 0))
        return plan[len(plan) // 2 : len(plan) // 2 + n]
    start = space.sample(1, 0)[0]
    run, it = [], space.enumerate()
    for cell in it:
        if cell == start or run:
            run.append(cell)
            if len(run) == n:
                return run
    return run + list(itertools.islice(space.enumerate(), n - len(run)))  # wrap around


def _models(
    cells: list[str], options: BuildOptions, dtype: torch.dtype = torch.float32, narrow: bool = False
) -> list[torch.nn.Module]:
    """The networks of `cells` as a seeded ingest builds them; `narrow`: 4 channels at the stem (the
    host part, whose kernels, parameter-sized ones too, should cost next to nothing; the same layers)."""
    if not narrow:
        space = get_space(SPACE)
    elif SPACE == "nb201":
        space = get_space("nb201", channels=4)
    else:  # NB301's network is nds-darts at width 32, depth 8
        space = get_space("nds-darts", width=4, depth=8)
    out = []
    for cell in cells:
        torch.manual_seed(derive_seed(0, cell))
        out.append(space.build(cell, options).to(dtype))
    return out


def kernels(cells: list[str], proxies: tuple[str, ...], sizes: list[int]) -> dict[str, float]:
    images, labels, n_cls = load_batch(DataSpec("cifar10", str(BATCH_NPZ), 2, 0))
    batch = to_batch(images, labels, n_cls, "cpu")
    options = BuildOptions(num_classes=n_cls)
    single = ProxyEngine(get_proxies(proxies))
    out = {}
    counter = OpCounter()
    n = min(4, len(cells))
    models = _models(cells[:n], options)
    with counter:
        for m, c in zip(models, cells, strict=False):
            single.compute(m, batch, derive_seed(0, c, "proxy"))
    out["single engine"] = counter.ops / n
    batched = BatchedEngine(ProxyEngine(get_proxies(proxies)))
    # Counted as a GPU runs it: a stacked convolution as one grouped kernel (on the CPU the batched
    # path runs one convolution per architecture, for float32 equal to the single engine's).
    network.GROUPED_CONV_DEVICES.add("cpu")
    try:
        for b in sizes:
            chosen = (cells * (b // len(cells) + 1))[:b]
            models = _models(chosen, options)
            counter = OpCounter()
            with counter:
                batched.compute(models, batch, [derive_seed(0, c, "proxy") for c in chosen])
            out[f"batched B={b}"] = counter.ops / b
    finally:  # the later parts measure the CPU's own path
        network.GROUPED_CONV_DEVICES.discard("cpu")
    return out


# Proxy sets whose operator counts, less the shared pass's (snip alone), tell where the single engine's go.
BREAKDOWN = (("snip",), ("snip", "grasp"), ("snip", "jacov"), ("snip", "nwot"), ("synflow",), ("zen",), ("l2_norm",),
             ("params", "flops"))  # fmt: skip


def breakdown(cells: list[str]) -> dict[str, float]:
    """Operators per architecture of the single engine for each set in `BREAKDOWN` (2 images)."""
    images, labels, n_cls = load_batch(DataSpec("cifar10", str(BATCH_NPZ), 2, 0))
    batch = to_batch(images, labels, n_cls, "cpu")
    models = _models(cells[:4], BuildOptions(num_classes=n_cls))
    out = {}
    for names in BREAKDOWN:
        engine, counter = ProxyEngine(get_proxies(names)), OpCounter()
        with counter:
            for m, c in zip(models, cells, strict=False):
                engine.compute(m, batch, derive_seed(0, c, "proxy"))
        out["+".join(names)] = counter.ops / len(models)
    return out


def host(proxies: tuple[str, ...], sizes: list[int], order: str, device: str) -> dict[str, tuple[float, float]]:
    """(milliseconds per architecture, the same with building its network) for the single engine and
    batched at each of `sizes`, on 2 random images of 8x8 and networks of 4 channels at the stem (the
    same layers, so the same operators): the kernels do almost nothing, so what is left is the host's
    cost per architecture. Building is what an ingest actor runs for each architecture before the engine
    sees it, timed apart: the space's `build`, and for the single engine the network's move to `device`
    (the batched path leaves the networks on the host and moves its stacked tensors, in the engine's
    time). The cells (`order`, as the speed part's) are sorted by spec, as a worker sorts a chunk before
    cutting it into passes. On the CPU the stacked convolutions are grouped, as a GPU runs them."""
    n = max(sizes)
    cells = sorted(_cells(n, order))
    gen = torch.Generator().manual_seed(0)
    batch = Batch(torch.randn((2, 3, 8, 8), generator=gen).to(device), torch.tensor([0, 1]).to(device), 10, "host")
    options = BuildOptions(num_classes=10, input_shape=(3, 8, 8))
    seeds = [derive_seed(0, c, "proxy") for c in cells]
    single, batched = ProxyEngine(get_proxies(proxies)), BatchedEngine(ProxyEngine(get_proxies(proxies)))

    def built(some: list[str]) -> list[torch.nn.Module]:
        return _models(some, options, narrow=True)

    def timed(fn) -> float:
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        return (time.perf_counter() - t0) / n * 1e3

    single.compute(built(cells[:1])[0].to(device), batch, seeds[0])  # warm-up: lazy state, caches, kernels
    batched.compute(built(cells[:2]), batch, seeds[:2])
    models: list[torch.nn.Module] = []
    build = timed(lambda: models.extend(built(cells)))
    move = timed(lambda: [m.to(device) for m in models])
    out = {"single engine": timed(lambda: [single.compute(m, batch, s) for m, s in zip(models, seeds, strict=True)])}
    grouped_here = device == "cpu" and "cpu" not in network.GROUPED_CONV_DEVICES
    if grouped_here:
        network.GROUPED_CONV_DEVICES.add("cpu")
    try:
        for b in sizes:  # every size over the same n cells, in passes of b
            models = built(cells)
            passes = [(models[i : i + b], seeds[i : i + b]) for i in range(0, n, b)]
            out[f"batched B={b}"] = timed(lambda passes=passes: [batched.compute(m, batch, s) for m, s in passes])
    finally:
        if grouped_here:
            network.GROUPED_CONV_DEVICES.discard("cpu")
    return {name: (ms, ms + build + (move if name == "single engine" else 0.0)) for name, ms in out.items()}


def speed(cells: list[str], proxies: tuple[str, ...], sizes: list[int], threads: int, device: str) -> dict:
    images, labels, n_cls = load_batch(DataSpec("cifar10", str(BATCH_NPZ), 64, 0))
    out = {}
    for b in [1, *sizes]:
        cfg = WorkerConfig(space=SPACE, proxies=proxies, device=device, threads=threads, arch_batch=b)
        worker = ProxyWorker(cfg, images, labels, n_cls)
        worker.compute_many([(c, c) for c in cells[: max(1, b)]])  # warm-up: allocator, kernels
        t0 = time.perf_counter()
        records = worker.compute_many([(c, c) for c in cells])
        wall = time.perf_counter() - t0
        out[b] = {"archs_per_s": len(cells) / wall, "failed": sum(r.status == "failed" for r in records)}
    base = out[1]["archs_per_s"]
    for row in out.values():
        row["ratio"] = row["archs_per_s"] / base
    return out


def _kendall(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def faithfulness(cells: list[str], proxies: tuple[str, ...], arch_batch: int) -> dict:
    images, labels, n_cls = load_batch(DataSpec("cifar10", str(BATCH_NPZ), 64, 0))
    b32 = to_batch(images, labels, n_cls, "cpu")
    b64 = replace(b32, images=b32.images.double())
    options = BuildOptions(num_classes=n_cls)
    seeds = [derive_seed(0, c, "proxy") for c in cells]
    engine = ProxyEngine(get_proxies(proxies))
    f64 = [engine.compute(m, b64, s) for m, s in zip(_models(cells, options, torch.float64), seeds, strict=True)]
    f32 = [engine.compute(m, b32, s) for m, s in zip(_models(cells, options), seeds, strict=True)]
    batched = []
    for at in range(0, len(cells), arch_batch):
        models = _models(cells[at : at + arch_batch], options)
        batched += BatchedEngine(engine).compute(models, b32, seeds[at : at + arch_batch])
    rows = {}
    for p in proxies:
        if p in ("params", "flops"):
            continue
        keep = [i for i, r in enumerate(f64) if r.values.get(p) is not None]
        ref = [f64[i].values[p] for i in keep]
        row = {}
        for name, got in (("single", f32), ("batched", batched)):
            vals = [got[i].values.get(p) for i in keep]
            if any(v is None for v in vals):
                row[name] = {"max_rel": math.inf, "tau": math.nan}
                continue
            worst = max((abs(v - r) / max(abs(r), 1e-300) for v, r in zip(vals, ref, strict=True)), default=0.0)
            row[name] = {"max_rel": worst, "tau": _kendall(vals, ref) if len(keep) > 1 else 1.0}
        s, b = row["single"]["max_rel"], row["batched"]["max_rel"]
        row["passes"] = b <= max(3 * s, 1e-12) and row["batched"]["tau"] >= row["single"]["tau"] - 1e-9
        rows[p] = row
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="nb201", choices=("nb201", "nb301"), help="whose networks (nb301: DARTS, C=32)")
    ap.add_argument("--cells", type=int, default=16, help="seeded cells for speed and float32")
    ap.add_argument("--arch-batch", default="4,8", help="batched sizes for the speed part")
    ap.add_argument("--kernel-sizes", default="1,16,64", help="batched sizes for the kernel count")
    ap.add_argument("--host-sizes", default="1,4,16,64", help="batched sizes for the host part")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--proxies", default=",".join(THIRTEEN))
    ap.add_argument("--parts", default="kernels,speed,float32")
    orders = ("sample", "sorted-sample", "enumerated")
    ap.add_argument("--order", default="sample", choices=orders, help="the speed and host parts' cells")
    args = ap.parse_args()
    global SPACE
    SPACE = args.space
    torch.set_num_threads(args.threads)
    collect_less_often()  # the garbage collector as a worker sets it (ProxyWorker), for every part alike
    proxies = tuple(p for p in args.proxies.split(",") if p)
    cells = _cells(args.cells)
    parts = set(args.parts.split(","))
    if "kernels" in parts:
        sizes = [int(b) for b in args.kernel_sizes.split(",")]
        print(f"| path | operators dispatched per {SPACE} architecture |\n| --- | --- |")
        for name, ops in kernels(cells, proxies, sizes).items():
            print(f"| {name} | {ops:,.0f} |", flush=True)
    if "breakdown" in parts:
        print("\n| single engine, proxies | operators per architecture |\n| --- | --- |")
        for name, ops in breakdown(cells).items():
            print(f"| {name} | {ops:,.0f} |", flush=True)
    if "host" in parts:
        sizes = [int(b) for b in args.host_sizes.split(",")]
        rows = host(proxies, sizes, args.order, args.device)
        base = rows["single engine"][1]
        head = f"{SPACE} (C=4), 2 images of 8x8, {args.order} cells, {args.device}"
        print(f"\n| {head} | host ms per arch | with its network's build | archs/s it allows | ratio to single |")
        print("| --- | --- | --- | --- | --- |")
        for name, (ms, built) in rows.items():
            print(f"| {name} | {ms:.1f} | {built:.1f} | {1e3 / built:.0f} | {base / built:.2f} |", flush=True)
    if "speed" in parts:
        sizes = [int(b) for b in args.arch_batch.split(",")]
        head = f"archs per pass ({args.threads} threads, {args.device}, {args.order} cells)"
        print(f"\n| {head} | archs/s | ratio to B=1 |\n| --- | --- | --- |")
        run = cells if args.order == "sample" else _cells(args.cells, args.order)
        for b, row in speed(run, proxies, sizes, args.threads, args.device).items():
            print(f"| B={b} | {row['archs_per_s']:.2f} | {row['ratio']:.2f} |", flush=True)
    if "float32" in parts:
        b = max(int(x) for x in args.arch_batch.split(","))
        print(f"\n| proxy | single f32 vs f64 (τ) | batched B={b} f32 vs f64 (τ) | passes |\n| --- | --- | --- | --- |")
        for p, row in faithfulness(cells, proxies, b).items():
            s, bt = row["single"], row["batched"]
            print(f"| {p} | {s['max_rel']:.1e} ({s['tau']:.3f}) | {bt['max_rel']:.1e} ({bt['tau']:.3f}) | "
                  f"{'yes' if row['passes'] else 'NO'} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
