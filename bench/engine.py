"""Engine throughput: shared passes vs one proxy at a time (zero-cost-nas), same cells, batch, threads.

    python bench/engine.py [--cells 8] [--batch-size 64] [--threads 1] [--device cpu] [--memory-budget-mb MB]

Values are checked identical (relative 1e-6) for every cell, then the seconds per architecture of
both paths are printed with their ratio. The last line is `speedup <ratio>` for the seven
zero-cost-nas proxies (grad_norm, snip, grasp, fisher, jacov, plain, synflow).

GraSP's Hessian-gradient product is a double backward that costs about four backward passes in both
paths; the "seven minus grasp" row shows the ratio where that shared floor is absent.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CIFAR_NPZ, machine, require

from zcpipe.workers.allocator import keep_freed_memory
from zcpipe.workers.collector import collect_less_often
from zcpipe.workers.data import DataSpec, load_batch, to_batch
from zcpipe.workers.engine import ProxyEngine
from zcpipe.workers.proxies import DEFAULT_PROXIES, ZC_NAS_PROXIES, get_proxies
from zcpipe.workers.seeding import derive_seed
from zcpipe.workers.spaces import BuildOptions, get_space


def same(a, b, rel: float = 1e-6, abs_tol: float = 1e-30) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)


def check(name: str, arch: str, s, o) -> None:
    """Shared equals oracle: to 1e-6 where both run the same kernels; GraSP to float32 rounding.

    GraSP's double backward uses other (exact) formulas in the shared pass; in float32 the two
    agree to ~1e-5 of the largest layer value, 10-100x closer than either is to float64
    (tests/test_engine_oracle.py).
    """
    rel, abs_tol = 1e-6, 1e-30
    if name == "grasp":
        rel, abs_tol = 1e-4, 1e-4 * max(abs(layer.values[name]) for layer in o.layers)
    if not same(s.values[name], o.values[name], rel, abs_tol):
        raise SystemExit(f"error: {name} differs on {arch}: shared {s.values[name]} vs oracle {o.values[name]}")
    for ls, lo in zip(s.layers, o.layers, strict=True):
        if not same(ls.values.get(name), lo.values.get(name), rel, abs_tol):
            raise SystemExit(f"error: {name} differs on {arch} layer {ls.slot}")


def _timed(fn, models, batch) -> tuple[float, list]:
    out = []
    t0 = time.perf_counter()
    for model in models:
        out.append(fn(model, batch, 1))
    return time.perf_counter() - t0, out


def bench(names, archs, batch, space, device, interleave: bool, budget_mb: float | None = None) -> tuple[float, float]:
    """Seconds per architecture of (shared passes, one at a time) on the same models; `budget_mb` is the
    shared engine's memory budget (a CPU ingest gives each actor 60 % of the machine's memory over the
    actors: its plan's cost is then in the figure).

    By default each path runs over all cells in a row, as it would in a worker; interleaving
    them per cell makes each path start on the other's heap and cache state.
    """
    budget = None if budget_mb is None else int(budget_mb * 2**20)
    engine = ProxyEngine(get_proxies(list(names)), memory_budget_bytes=budget)
    models = []
    for arch in archs:
        torch.manual_seed(derive_seed(0, arch))
        models.append(space.build(arch, BuildOptions()).to(device))
    if interleave:
        shared_t = oracle_t = 0.0
        shared, oracle = [], []
        for model in models:
            t, s = _timed(engine.compute, [model], batch)
            shared_t, shared = shared_t + t, shared + s
            t, o = _timed(engine.compute_one_at_a_time, [model], batch)
            oracle_t, oracle = oracle_t + t, oracle + o
    else:
        shared_t, shared = _timed(engine.compute, models, batch)
        oracle_t, oracle = _timed(engine.compute_one_at_a_time, models, batch)
    for arch, s, o in zip(archs, shared, oracle, strict=True):
        for n in names:
            check(n, arch, s, o)
    return shared_t / len(archs), oracle_t / len(archs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--interleave", action="store_true", help="alternate the two paths per cell")
    ap.add_argument("--memory-budget-mb", type=float, default=None, help="the shared engine's budget, as ingest's")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    collect_less_often()  # as ProxyWorker does; applies to both paths alike
    if args.device == "cpu":
        keep_freed_memory()
    images, labels, n = load_batch(DataSpec("cifar10", str(require(CIFAR_NPZ)), args.batch_size, args.seed))
    batch = to_batch(images, labels, n, args.device)
    space = get_space("nb201")
    archs = space.sample(args.cells + 1, args.seed)
    bench(DEFAULT_PROXIES, archs[:1], batch, space, args.device, False)  # warm-up: allocator, kernels, imports
    print(
        f"# engine benchmark: {args.cells} seeded NB201 cells, real CIFAR-10 batch {args.batch_size}, "
        f"{args.threads} thread(s), device {args.device}, paths "
        f"{'interleaved per cell' if args.interleave else 'each over all cells in a row'}, memory budget "
        f"{args.memory_budget_mb or 'none'} MB; {machine()}"
    )
    results = {}
    without_grasp = tuple(n for n in ZC_NAS_PROXIES if n != "grasp")
    sets = (
        ("card five", DEFAULT_PROXIES),
        ("ingest's default", (*DEFAULT_PROXIES, "params", "flops")),  # what `zcpipe ingest` computes by default
        ("zero-cost-nas seven", ZC_NAS_PROXIES),
        ("seven minus grasp", without_grasp),
    )
    for label, names in sets:
        shared, oracle = bench(names, archs[1:], batch, space, args.device, args.interleave, args.memory_budget_mb)
        results[label] = oracle / shared
        print(
            f"{label:20s} shared {shared:7.3f} s/arch   one-at-a-time {oracle:7.3f} s/arch   "
            f"ratio {oracle / shared:5.2f}x   values identical"
        )
    print(f"speedup {results['zero-cost-nas seven']:.2f}")


if __name__ == "__main__":
    main()
