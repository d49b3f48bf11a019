"""NAS loops with and without zero-cost proxies, in one run, on the shared stores with their real labels.

    python bench/nas.py [--seeds 20] [--budget 300] [--nb301-budget 100] [--part nb201|nb301|all] [--work DIR]

- nb201: the 3,000 stored NB201 cells (shared store nb201-c10-3000: statistics on real CIFAR-10), queried
  for `cifar10_valid` and for `cifar100_valid` (NAS-Bench-201's labels of the same cells; the statistics are
  CIFAR-10's, as a proxy is computed once and reused across tasks), budget 300, 20 seeds.
- nb301: the 520 stored NB301 genotypes (shared store nb301-c10, NAS-Bench-301's network), budget 100.

Every loop runs on the stored cells only (a partial store restricts the space; the output says so). Compared
in the same run: random search, REA, local search, BANANAS; each with and without ZC (features, warm start,
guided moves). Results go to bench/results/nas-*.json and print as markdown tables.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NB201_LABELS, ROOT, SHARED, machine, require

from zcpipe.pipeline import import_labels
from zcpipe.pipeline.nas import NasConfig, run_nas
from zcpipe.pipeline.nas.pool import load_pool
from zcpipe.pipeline.store_ops import reconcile

RESULTS = ROOT / "bench" / "results"
DARTS_LABELS = SHARED / "darts" / "labels.jsonl"
ZC = ("onehot", "zc", "graph")
# (label, algo, features, warm start, guided)
LOOPS = [
    ("random", "random", ("onehot",), None, False),
    ("REA", "rea", ("onehot",), None, False),
    ("REA + ZC warm start", "rea", ("onehot",), "zc", False),
    ("REA + ZC-guided mutation", "rea", ("onehot",), None, True),
    ("local search", "local", ("onehot",), None, False),
    ("local search + ZC-guided", "local", ("onehot",), None, True),
    ("BANANAS (one-hot)", "bananas", ("onehot",), None, False),
    ("BANANAS (one-hot + ZC + graph)", "bananas", ZC, None, False),
    ("BANANAS (one-hot + ZC + graph) + warm start", "bananas", ZC, "zc", False),
]


def store_copy(name: str, work: Path, labels: list[tuple[str, Path]]) -> str:
    """A writable, reconciled copy of a shared store with its labels imported (made once)."""
    store = work / name
    if not (store / "catalog.duckdb").exists():
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(require(SHARED / "stores" / name), store, copy_function=shutil.copy)
        for p in store.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        reconcile(str(store))
        for space, path in labels:
            import_labels(str(store), space, str(require(path)))
    return str(store)


def compare(store: str, space: str, target: str, budget: int, seeds: int) -> dict:
    """Every loop of LOOPS on one store and target; returns the rows of its table."""
    pool = load_pool(store, space, target, ZC)
    rows = []
    for label, algo, feats, warm, guided in LOOPS:
        t0 = time.perf_counter()
        name = f"bench-{space}-{target}-{algo}-{'.'.join(feats)}-{warm or 'cold'}-{guided}-b{budget}-s{seeds}"
        cfg = NasConfig(store, space, target, algo, budget, seeds, feats, warm, guided, name=name)
        result = run_nas(cfg, progress=False, pool=pool)
        s = result.summary
        rows.append({"loop": label, **s.row(), "to_top01_mean": s.to_top01[0], "found_best_n": s.found_best,
                     "regret_mean": s.regret[0], "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
        print(f"  {label}: {s.row()} ({rows[-1]['seconds']} s)", flush=True)
    return {"space": space, "target": target, "budget": budget, "seeds": seeds, "pool": len(pool),
            "space_size": pool.space_size, "rows": rows}  # fmt: skip


def markdown(result: dict) -> str:
    head = ["loop", "best valid", "test of chosen", "regret", "queries to top 0.1%", "queries to top 1%",
            "found the best", "proxy s", "seconds"]  # fmt: skip
    where = f"{result['pool']} stored cells" + (f" of {result['space_size']}" if result["space_size"] else "")
    lines = [f"**{result['space']} {result['target']}**, budget {result['budget']}, {result['seeds']} seeds, "
             f"{where}; mean ± standard error", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]  # fmt: skip
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in result["rows"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--nb301-budget", type=int, default=100)
    ap.add_argument("--part", choices=("nb201", "nb301", "all"), default="all")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / ".work" / "nas")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    print(f"machine: {machine()}")
    out = []
    if args.part in ("nb201", "all"):
        store = store_copy("nb201-c10-3000", args.work, [("nb201", NB201_LABELS)])
        for target in ("cifar10_valid", "cifar100_valid"):
            print(f"nb201 {target}:", flush=True)
            out.append(compare(store, "nb201", target, args.budget, args.seeds))
    if args.part in ("nb301", "all"):
        store = store_copy("nb301-c10", args.work, [("nds-darts", DARTS_LABELS)])
        print("nb301 cifar10_valid:", flush=True)
        out.append(compare(store, "nds-darts", "cifar10_valid", args.nb301_budget, args.seeds))
    for result in out:
        name = f"nas-{result['space']}-{result['target']}.json"
        (RESULTS / name).write_text(json.dumps({"machine": machine(), **result}, indent=1))
        print("\n" + markdown(result))


if __name__ == "__main__":
    main()
