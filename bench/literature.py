"""Faithfulness: each proxy's Spearman ρ on NB201 CIFAR-10 next to the published value.

    python bench/literature.py [--cells 300] [--workers 2] [--store DIR]

Ingests a seeded sample of NB201 cells with every proxy at batch 64 on the real CIFAR-10 images in
../shared/data (resumable: an existing --store is reused), then ranks each proxy against
`cifar10_valid` (and `cifar10_test`) from ../shared/data/nb201/labels.csv, inside DuckDB.
Published values are on all 15,625 cells (zero-cost-nas, NASWOT, NAS-Bench-Suite-Zero).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import duckdb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CIFAR_NPZ, NB201_LABELS, ROOT, machine, require

from zcpipe.pipeline.ingest import IngestConfig, ingest
from zcpipe.predictors import rank_metrics
from zcpipe.store import Catalog
from zcpipe.workers.proxies import all_proxies

PUBLISHED = {
    "synflow": 0.74,
    "jacov": 0.73,
    "snip": 0.60,
    "grad_norm": 0.59,
    "grasp": 0.51,
    "fisher": 0.36,
    "nwot": 0.78,
    "params": 0.73,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=300)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--store", default=str(ROOT / "bench-store"))
    args = ap.parse_args()
    names = tuple(sorted(all_proxies()))
    cfg = IngestConfig(
        space="nb201",
        store=args.store,
        limit=args.cells,
        proxies=names,
        data="cifar10",
        data_root=str(require(CIFAR_NPZ)),
        batch_size=64,
        workers=args.workers,
    )
    summary = ingest(cfg, progress=True)
    cols = ", ".join(f"a.{n}" for n in names)
    with Catalog(args.store).reader() as con:
        rows = con.execute(
            f"SELECT {cols}, l.cifar10_valid, l.cifar10_test FROM archs a "
            f"JOIN read_csv(?, header = true) l ON a.arch = l.arch "
            f"WHERE a.config_hash = ? AND a.status <> 'failed'",
            [str(require(NB201_LABELS)), summary.config_hash],
        ).fetchnumpy()
    print(f"# NB201 CIFAR-10, {len(rows['cifar10_valid'])} seeded cells, batch 64 real images; {machine()}")
    print(f"{'proxy':10s} {'n':>4s} {'rho_valid':>9s} {'rho_test':>9s} {'published':>9s} {'delta':>7s}")
    for n in names:
        v = rank_metrics(np.asarray(rows[n], dtype=float), rows["cifar10_valid"])
        t = rank_metrics(np.asarray(rows[n], dtype=float), rows["cifar10_test"])
        pub = PUBLISHED.get(n)
        delta = "" if pub is None else f"{v['spearman'] - pub:+7.2f}"
        flag = "  <- more than 0.06 off" if pub is not None and abs(v["spearman"] - pub) > 0.06 else ""
        print(
            f"{n:10s} {v['n']:4d} {v['spearman']:9.3f} {t['spearman']:9.3f} "
            f"{'' if pub is None else f'{pub:9.2f}':>9s} {delta:>7s}{flag}"
        )


if __name__ == "__main__":
    duckdb.default_connection()  # fail early if duckdb is broken
    main()
