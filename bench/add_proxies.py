"""Proxies added to a benchmark store's cells as a configuration of their own, beside the one it holds.

    python bench/add_proxies.py --task nb201-c10|nb201-c100|nb301 [--proxies meco,swap,zico] [--workers 2]

The shared stores (NB201 CIFAR-10, 3,000 cells; NB301, 520 genotypes; prepared as bench/predictors.py
prepares them) hold the 13 proxies of 2021; the CIFAR-100 store is the one `bench/tasks.py --part cifar100`
makes. This ingests the named proxies for exactly the cells a store holds (an arch file written from its
catalog), with the settings the store was made with (the space and its options, the images, batch 64,
seed 0), as another configuration: nothing already computed is computed again.
`python bench/predictors.py --task T --configs all` then reads them side by side (a comma-separated
`config_hash`). A rerun resumes. Prints the new configuration's hash and what it cost;
bench/results/add-proxies-<task>.json keeps both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CIFAR100_NPZ, CIFAR_NPZ, DARTS_LABELS, NB201_LABELS, ROOT, machine, shared_store

C10 = {"data": "cifar10", "data_root": CIFAR_NPZ}
TASKS = {
    "nb201-c10": {"shared": "nb201-c10-3000", "store": ROOT / "bench-store", "space": "nb201", "space_params": {},
                  "labels": NB201_LABELS, **C10},
    "nb201-c100": {"shared": None, "store": ROOT / "bench-tasks-store", "space": "nb201", "space_params": {},
                   "data": "cifar100", "data_root": CIFAR100_NPZ},
    "nb301": {"shared": "nb301-c10", "store": ROOT / "bench-tasks-store-nb301", "space": "nds-darts",
              "space_params": {"width": 32, "depth": 8}, "labels": DARTS_LABELS, **C10},
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=sorted(TASKS), default="nb201-c10")
    ap.add_argument("--proxies", default="meco,swap,zico")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from zcpipe.pipeline.ingest import IngestConfig, ingest
    from zcpipe.store import Catalog

    task = TASKS[args.task]
    store = task["store"]
    if task["shared"]:
        shared_store(task["shared"], store, task["space"], task["labels"])
    elif not (store / "catalog.duckdb").exists():
        raise SystemExit(f"error: {store} has no catalog; run `python bench/tasks.py --part cifar100` first")
    rows = Catalog(store).query(
        # (the shared stores were written before `archs` recorded the dataset: NULL there)
        f"SELECT DISTINCT arch FROM archs WHERE space = '{task['space']}' "
        f"AND coalesce(dataset, '{task['data']}') = '{task['data']}' ORDER BY 1"
    )
    archs = rows.column("arch").to_pylist()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(archs) + "\n")
    cfg = IngestConfig(space=task["space"], space_params=task["space_params"], store=str(store), archs_file=f.name,
                       proxies=tuple(args.proxies.split(",")), data=task["data"], data_root=str(task["data_root"]),
                       batch_size=64, seed=0, workers=args.workers)  # fmt: skip
    t0 = time.perf_counter()
    s = ingest(cfg, progress=sys.stderr.isatty())
    Path(f.name).unlink()
    wall = time.perf_counter() - t0
    print(s.line(), file=sys.stderr)
    result = {"task": args.task, "machine": machine(), "proxies": args.proxies, "cells": len(archs),
              "config_hash": s.config_hash, "done": s.done, "skipped": s.skipped, "failed": s.failed,
              "wall_s": round(wall, 1), "s_per_arch_per_worker": s.seconds_per_arch}  # fmt: skip
    out = ROOT / "bench" / "results" / f"add-proxies-{args.task}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    print(f"config_hash {s.config_hash}")


if __name__ == "__main__":
    main()
