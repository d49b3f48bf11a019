"""Faithfulness: each proxy's Spearman ρ (and Kendall τ) on NB201 next to the published value.

    python bench/literature.py [--cells 300] [--workers 2] [--store DIR] [--proxies a,b] [--data cifar100]

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
from common import CIFAR100_NPZ, CIFAR_NPZ, NB201_LABELS, ROOT, machine, require

from zcpipe.pipeline.ingest import IngestConfig, ingest
from zcpipe.predictors import rank_metrics
from zcpipe.store import Catalog
from zcpipe.workers.proxies import all_proxies

# The proxies of 2023-24, as their papers report them on NB201: MeCo ρ 0.89 (NATS-TSS CIFAR-10), SWAP ρ 0.90
# (CIFAR-100; NWOT 0.80 there), ZiCo ρ 0.80 (CIFAR-10; its Table 1 on NB201, all cells).
# AZ-NAS ρ 0.913 (τ 0.741) on NB201 CIFAR-10, its aggregate of four ranks (computed here from the stored scores).
PUBLISHED_2023 = {
    "cifar10": {"meco": 0.89, "zico": 0.80, "az_nas": 0.913},
    "cifar100": {"swap": 0.90, "nwot": 0.80, "meco": 0.88},
}
AZ_PARTS = ("az_expressivity", "az_progressivity", "az_trainability", "flops")
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
    ap.add_argument("--proxies", default="", help="comma-separated (default: every registered proxy)")
    ap.add_argument("--data", default="cifar10", choices=("cifar10", "cifar100"))
    args = ap.parse_args()
    names = tuple(sorted(args.proxies.split(",") if args.proxies else all_proxies()))
    published = {**PUBLISHED, **PUBLISHED_2023["cifar10"]} if args.data == "cifar10" else PUBLISHED_2023["cifar100"]
    pack = CIFAR_NPZ if args.data == "cifar10" else CIFAR100_NPZ
    cfg = IngestConfig(
        space="nb201",
        store=args.store,
        limit=args.cells,
        proxies=names,
        data=args.data,
        data_root=str(require(pack)),
        batch_size=64,
        workers=args.workers,
    )
    summary = ingest(cfg, progress=True)
    cols = ", ".join(f"a.{n}" for n in names)
    with Catalog(args.store).reader() as con:
        rows = con.execute(
            f"SELECT {cols}, l.cifar10_valid, l.cifar10_test, l.cifar100_valid FROM archs a "
            f"JOIN read_csv(?, header = true) l ON a.arch = l.arch "
            f"WHERE a.config_hash = ? AND a.status <> 'failed'",
            [str(require(NB201_LABELS)), summary.config_hash],
        ).fetchnumpy()
    valid, test = ("cifar10_valid", "cifar10_test") if args.data == "cifar10" else ("cifar100_valid", None)
    seconds = _seconds_per_arch(args.store, summary.config_hash, names)
    print(f"# NB201 {args.data}, {len(rows[valid])} seeded cells, batch 64 real images; {machine()}")
    print(f"{'proxy':10s} {'n':>4s} {'rho_valid':>9s} {'tau_valid':>9s} {'rho_test':>9s} {'published':>9s} "
          f"{'delta':>7s} {'s/arch':>7s}")  # fmt: skip
    if set(AZ_PARTS) <= set(names):
        rows["az_nas"] = az_nas(rows)
        names = (*names, "az_nas")
    for n in names:
        v = rank_metrics(np.asarray(rows[n], dtype=float), rows[valid])
        t = rank_metrics(np.asarray(rows[n], dtype=float), rows[test])["spearman"] if test else float("nan")
        pub = published.get(n)
        delta = "" if pub is None else f"{v['spearman'] - pub:+7.2f}"
        flag = "  <- more than 0.05 off" if pub is not None and abs(v["spearman"] - pub) > 0.05 else ""
        print(
            f"{n:10s} {v['n']:4d} {v['spearman']:9.3f} {v['kendall']:9.3f} {t:9.3f} "
            f"{'' if pub is None else f'{pub:9.2f}':>9s} {delta:>7s} {seconds.get(n, float('nan')):7.3f}{flag}"
        )


def az_nas(rows: dict) -> np.ndarray:
    """AZ-NAS's aggregate over these cells: Σ log(rank / N) of its four scores (NaN where one is NULL)."""
    from scipy.stats import rankdata

    parts = np.stack([np.asarray(rows[n], dtype=float) for n in AZ_PARTS])
    ok = ~np.isnan(parts).any(axis=0)
    out = np.full(parts.shape[1], np.nan)
    ranks = np.stack([rankdata(p[ok]) for p in parts])
    out[ok] = np.log(ranks / ok.sum()).sum(axis=0)
    return out


def _seconds_per_arch(store: str, config_hash: str, names: tuple[str, ...]) -> dict[str, float]:
    """Mean seconds per architecture of each proxy, as the workers timed it (its share of a shared pass)."""
    with Catalog(store).reader() as con:
        cols = ", ".join(f"avg(proxy_seconds['{n}']) AS {n}" for n in names)
        row = con.execute(f"SELECT {cols} FROM archs WHERE config_hash = ?", [config_hash]).fetchnumpy()
    return {n: float(row[n][0]) for n in names}


if __name__ == "__main__":
    duckdb.default_connection()  # fail early if duckdb is broken
    main()
