"""The training stage on the shared store of 3,000 real NB201 cells: loader speed, then every predictor
x train sizes x seeds, Kendall τ / Spearman ρ (mean ± std) on every other labeled cell.

    python bench/predictors.py [--store DIR] [--sizes 78,156,469,781,1563] [--seeds 0,1,2] [--jobs 2]
                               [--only parzc,gbdt] [--out bench/results/predictors.md]

Without --store it copies ../shared/data/stores/nb201-c10-3000 to ./bench-store, registers its shards
(`store reconcile`) and imports the NB201 labels. Every fit goes through `zcpipe.pipeline.training.train`,
so each lands as a row of `models` (named bench-...; an existing row is reused, so a rerun resumes).
Loader speed is a ratio against reading the same Zarr shards one after another in the same run.
Last line: `parzc_kendall_156 <mean τ>`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NB201_LABELS, ROOT, SHARED, machine, require

# (label in the table, predictor, options)
TRAINED = [
    ("parzc", "parzc", {}),
    ("parzc-nobayes", "parzc-nobayes", {}),
    ("parzc-notokenmix", "parzc-notokenmix", {}),
    ("parzc align=position", "parzc", {"align": "position"}),
    ("parzc global_token=true", "parzc", {"global_token": True}),
    ("mlp", "mlp", {}),
    ("gbdt (whole-network)", "gbdt", {}),
    ("gbdt features=nodewise", "gbdt", {"features": "nodewise"}),
    ("graf graph alone", "graf", {"features": "graph"}),
    ("graf zc alone", "graf", {"features": "zc"}),
    ("graf graph and zc", "graf", {"features": "graph,zc"}),
    ("zc-gcn", "zc-gcn", {}),
    ("stack", "stack", {}),
]
ZERO_SHOT = ["vote"] + [
    f"proxy:{p}"
    for p in (
        "nwot",
        "synflow",
        "params",
        "flops",
        "jacov",
        "epe_nas",
        "l2_norm",
        "snip",
        "grad_norm",
        "grasp",
        "fisher",
        "zen",
        "plain",
    )
]
# The public reference code's logs (all 15,625 cells as test set, training cells included), and the paper.
REFERENCE = {78: 0.69, 156: 0.73, 469: 0.76, 781: 0.78, 1563: 0.78}
PAPER = {156: 0.706}
SPACE, TARGET = "nb201", "cifar10_valid"


def prepare(store: Path | None) -> Path:
    from zcpipe.pipeline import import_labels
    from zcpipe.store import Catalog

    if store is not None:
        return store
    store = ROOT / "bench-store"
    if not (store / "catalog.duckdb").exists():
        src = require(SHARED / "stores" / "nb201-c10-3000")
        shutil.copytree(src, store, dirs_exist_ok=True, copy_function=shutil.copy)
        for p in [store, *store.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        with Catalog(store).writer() as w:
            w.reconcile(verify_all=True)
        import_labels(str(store), SPACE, str(require(NB201_LABELS)), "auto", False)
    return store


def loader_figures(store: Path) -> tuple[float, float, float]:
    """Medians of 5: (load_training_set end to end, its tensor part (all shards' zarr read in one event
    loop), the baseline for that part: the same shards read one after another with `read_tensors`)."""
    from zcpipe.store import Catalog, read_tensors
    from zcpipe.store.tensor_reader import load_training_set, read_nodewise

    whole, tensors, naive = [], [], []
    dirs = Catalog(store).committed_shard_dirs(SPACE)
    for _ in range(5):
        t = time.perf_counter()
        data = load_training_set(store, SPACE, target=TARGET)
        whole.append(time.perf_counter() - t)
        t = time.perf_counter()
        read_nodewise(dirs, data.archs)
        tensors.append(time.perf_counter() - t)
        t = time.perf_counter()
        for d in dirs:
            read_tensors(d)
        naive.append(time.perf_counter() - t)
    print(f"loader: {len(data)} cells x {len(data.proxies)} proxies x {len(data.slots)} slots", flush=True)
    return statistics.median(whole), statistics.median(tensors), statistics.median(naive)


def fit_one(job: tuple) -> dict:
    store, label, predictor, hparams, size, seed = job
    import torch

    torch.set_num_threads(1)
    from zcpipe.pipeline import TrainConfig, train
    from zcpipe.store.model_artifacts import model_dir, model_names

    name = f"bench-{label.replace(' ', '-').replace('(', '').replace(')', '')}-n{size}-s{seed}"
    if name in model_names(store):  # resume: this fit is done
        config = model_dir(store, name)[1]
        m = config["metrics"]
        return {"label": label, "size": size, "seed": seed, "kendall": m["kendall"], "spearman": m["spearman"],
                "cpu": config["fit_cpu_seconds"]}  # fmt: skip
    cfg = TrainConfig(str(store), SPACE, predictor, TARGET, size, seed, name=name, hparams=hparams)
    r = train(cfg)
    return {"label": label, "size": size, "seed": seed, "kendall": r.metrics["kendall"],
            "spearman": r.metrics["spearman"], "cpu": r.fit_cpu_seconds}  # fmt: skip


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(results: list[dict], sizes: list[int], labels: list[str], key: str) -> str:
    head = "| predictor | " + " | ".join(str(s) for s in sizes) + " |"
    lines = [head, "|" + " --- |" * (len(sizes) + 1)]
    for label in labels:
        cells = []
        for s in sizes:
            v = [r[key] for r in results if r["label"] == label and r["size"] == s]
            cells.append(_cell(v) if v else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path)
    ap.add_argument("--sizes", default="78,156,469,781,1563")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--only", default="", help="comma-separated table labels to run (default: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "predictors.md")
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    store = prepare(args.store)

    fast, part, naive = loader_figures(store)
    print(f"loader_seconds {fast:.3f} (target < 1 s); tensors {part:.3f} s vs sequential {naive:.3f} s "
          f"({naive / part:.2f}x)")  # fmt: skip

    only = set(filter(None, args.only.split(",")))
    trained = [t for t in TRAINED if not only or t[0] in only]
    zero = [z for z in ZERO_SHOT if not only or z in only]
    jobs = [(store, z, z, {}, s, seed) for z in zero for s in sizes for seed in seeds]
    # biggest fits first, so the pool's tail is short
    jobs += sorted(
        [(store, label, p, hp, s, seed) for label, p, hp in trained for s in sizes for seed in seeds],
        key=lambda j: -j[4],
    )
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = []
        for r in pool.map(fit_one, jobs):
            results.append(r)
            print(f"{r['label']:24s} n={r['size']:5d} seed={r['seed']} kendall {r['kendall']:.4f} "
                  f"spearman {r['spearman']:.4f} cpu {r['cpu']:.1f}s", flush=True)  # fmt: skip
    wall = time.perf_counter() - t0
    labels = [t[0] for t in trained] + zero
    cpu = {lab: statistics.mean([r["cpu"] for r in results if r["label"] == lab and r["size"] == 156] or [0.0])
           for lab in labels}  # fmt: skip
    out = [
        f"Machine: {machine()}; {args.jobs} fits in parallel, 1 torch thread each; {wall / 60:.1f} min wall.",
        f"Store: {store.name} (3,000 NB201 cells, config b73d81fda35aaef5); target {TARGET}; seeds {args.seeds}.",
        f"Loader: {fast:.3f} s for all cells end to end (target < 1 s); its tensor part {part:.3f} s against "
        f"{naive:.3f} s reading the same shards one by one ({naive / part:.2f}x).",
        "",
        "Kendall τ on every labeled cell not in the training set (mean ± std over seeds):",
        "",
        table(results, sizes, labels, "kendall"),
        "| paper (ParZC, Table 2; test set includes training cells) | " + " | ".join(
            f"{PAPER[s]:.3f}" if s in PAPER else "" for s in sizes) + " |",
        "| reference code logs (all 15,625 cells, training cells included) | " + " | ".join(
            f"{REFERENCE[s]:.2f}" if s in REFERENCE else "" for s in sizes) + " |",
        "",
        "Spearman ρ:",
        "",
        table(results, sizes, labels, "spearman"),
        "",
        "CPU seconds per fit at 156 cells: " + ", ".join(f"{lab} {cpu[lab]:.1f}" for lab in labels if cpu[lab] > 0.05),
    ]  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(out) + "\n")
    print("\n".join(out))
    parzc = [r["kendall"] for r in results if r["label"] == "parzc" and r["size"] == 156]
    print(f"parzc_kendall_156 {statistics.mean(parzc):.4f}" if parzc else "parzc_kendall_156 nan")


if __name__ == "__main__":
    main()
