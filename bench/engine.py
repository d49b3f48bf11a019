"""Engine throughput: shared passes vs one proxy at a time (zero-cost-nas), same cells, batch, threads.

    python bench/engine.py [--cells 8] [--batch-size 64] [--threads 1] [--device cpu]

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

from zcpipe.workers.data import DataSpec, load_batch, to_batch
from zcpipe.workers.engine import ProxyEngine
from zcpipe.workers.proxies import DEFAULT_PROXIES, ZC_NAS_PROXIES, get_proxies
from zcpipe.workers.seeding import derive_seed
from zcpipe.workers.spaces import BuildOptions, get_space


def same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-30)


def bench(names, archs, batch, space, device) -> tuple[float, float]:
    engine = ProxyEngine(get_proxies(list(names)))
    shared_t = oracle_t = 0.0
    for arch in archs:
        torch.manual_seed(derive_seed(0, arch))
        model = space.build(arch, BuildOptions()).to(device)
        t0 = time.perf_counter()
        s = engine.compute(model, batch, 1)
        t1 = time.perf_counter()
        o = engine.compute_one_at_a_time(model, batch, 1)
        t2 = time.perf_counter()
        shared_t += t1 - t0
        oracle_t += t2 - t1
        for n in names:
            if not same(s.values[n], o.values[n]):
                raise SystemExit(f"error: {n} differs on {arch}: shared {s.values[n]} vs oracle {o.values[n]}")
            for ls, lo in zip(s.layers, o.layers, strict=True):
                if not same(ls.values.get(n), lo.values.get(n)):
                    raise SystemExit(f"error: {n} differs on {arch} layer {ls.slot}")
    return shared_t / len(archs), oracle_t / len(archs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images, labels, n = load_batch(DataSpec("cifar10", str(require(CIFAR_NPZ)), args.batch_size, args.seed))
    batch = to_batch(images, labels, n, args.device)
    space = get_space("nb201")
    archs = space.sample(args.cells + 1, args.seed)
    bench(DEFAULT_PROXIES, archs[:1], batch, space, args.device)  # warm-up: allocator, kernels, imports
    print(
        f"# engine benchmark: {args.cells} seeded NB201 cells, real CIFAR-10 batch {args.batch_size}, "
        f"{args.threads} thread(s), device {args.device}; {machine()}"
    )
    results = {}
    without_grasp = tuple(n for n in ZC_NAS_PROXIES if n != "grasp")
    sets = (
        ("card five", DEFAULT_PROXIES),
        ("zero-cost-nas seven", ZC_NAS_PROXIES),
        ("seven minus grasp", without_grasp),
    )
    for label, names in sets:
        shared, oracle = bench(names, archs[1:], batch, space, args.device)
        results[label] = oracle / shared
        print(
            f"{label:20s} shared {shared:7.3f} s/arch   one-at-a-time {oracle:7.3f} s/arch   "
            f"ratio {oracle / shared:5.2f}x   values identical"
        )
    print(f"speedup {results['zero-cost-nas seven']:.2f}")


if __name__ == "__main__":
    main()
