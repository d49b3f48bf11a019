"""Pipeline overhead: ingest through Ray vs the bare engine loop on the same cells, and 1 vs 2 workers.

    python bench/pipeline.py [--cells 48] [--batch-size 64]

Both sides start cold, so the comparison is symmetric. The bare loop runs ProxyWorker.compute on one
thread in a fresh Python process, timed from its start: imports, reading the dataset, the first (cold)
architecture, all of it. The Ray runs are full `ingest()` calls on an embedded Ray that is already up,
as on a long-lived cluster: actor start-up, each actor reading the dataset, staging writes, checksums
and commits. The last line is `overhead <fraction>`: (Ray with one worker − bare loop) / bare loop.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CIFAR_NPZ, machine, require

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray

from zcpipe.pipeline.ingest import IngestConfig, ingest
from zcpipe.workers.data import DataSpec, load_batch
from zcpipe.workers.proxies import DEFAULT_PROXIES
from zcpipe.workers.spaces import get_space
from zcpipe.workers.worker import ProxyWorker, WorkerConfig


def bare_loop(args) -> None:
    data = DataSpec("cifar10", str(require(CIFAR_NPZ)), args.batch_size, 0)
    images, labels, n = load_batch(data)
    worker = ProxyWorker(WorkerConfig("nb201", (*DEFAULT_PROXIES, "params", "flops"), threads=1), images, labels, n)
    records = worker.compute_many([(a, a) for a in get_space("nb201").sample(args.cells, 0)])
    assert all(r.status != "failed" for r in records)


def actor_startup_seconds(cfg: IngestConfig) -> float:
    """Seconds until a fresh IngestActor answers: process start, imports, dataset read."""
    from zcpipe.pipeline.ingest.actors import remote_actor_class
    from zcpipe.workers.data import batch_sha256

    data = DataSpec(cfg.data, cfg.data_root, cfg.batch_size, cfg.seed)
    sha = batch_sha256(*load_batch(data)[:2])
    wcfg = WorkerConfig("nb201", cfg.all_proxies, threads=1)
    t0 = time.perf_counter()
    actor = remote_actor_class().options(num_cpus=1).remote(wcfg, data, sha, "/tmp/unused", cfg.all_proxies)
    ray.get(actor.pid.remote(), timeout=300)
    seconds = time.perf_counter() - t0
    ray.kill(actor)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--bare", action="store_true", help="internal: run the bare engine loop and exit")
    args = ap.parse_args()
    if args.bare:
        return bare_loop(args)
    data = dict(data="cifar10", data_root=str(require(CIFAR_NPZ)), batch_size=args.batch_size)
    cfg = IngestConfig(space="nb201", store="unused", limit=args.cells, proxies=DEFAULT_PROXIES, **data)

    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--bare", "--cells", str(args.cells), "--batch-size", str(args.batch_size)],
        check=True,
    )
    bare = time.perf_counter() - t0

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    startup = actor_startup_seconds(cfg)
    walls, computing = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            run_cfg = IngestConfig(
                space="nb201",
                store=f"{tmp}/w{workers}",
                limit=args.cells,
                workers=workers,
                proxies=DEFAULT_PROXIES,
                **data,
            )
            t0 = time.perf_counter()
            summary = ingest(run_cfg, progress=False)
            walls[workers] = time.perf_counter() - t0
            computing[workers] = summary.worker_seconds
            assert summary.done == args.cells and summary.failed == 0
    ray.shutdown()
    overhead = (walls[1] - bare) / bare
    print(
        f"# pipeline benchmark: {args.cells} seeded NB201 cells, real CIFAR-10 batch {args.batch_size}, "
        f"proxies {','.join(DEFAULT_PROXIES)}, one thread per worker; {machine()}"
    )
    print(f"bare loop, new process{bare:7.1f} s   {args.cells / bare:6.3f} archs/s")
    print(f"ingest, 1 Ray worker  {walls[1]:7.1f} s   {args.cells / walls[1]:6.3f} archs/s")
    print(
        f"ingest, 2 Ray workers {walls[2]:7.1f} s   {args.cells / walls[2]:6.3f} archs/s   "
        f"scaling 1->2 workers {walls[1] / walls[2]:.2f}x"
    )
    print(
        f"1 worker: {computing[1]:.1f} s computing inside the actor, {walls[1] - computing[1]:.1f} s outside it "
        f"(a fresh actor takes {startup:.1f} s to answer: process, imports, dataset)"
    )
    print(f"overhead {overhead:.3f}")


if __name__ == "__main__":
    main()
