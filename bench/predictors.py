"""The training stage on real stores: every predictor x feature set x train size x seed, Kendall τ /
Spearman ρ (mean ± std) on every other labeled cell; the loader's speed on the 3,000-cell store.

    python bench/predictors.py [--task nb201-c10|nb201-c100|nb301] [--unique] [--sizes 78,156,...]
                               [--seeds 0,1,2] [--jobs 2] [--only "parzc,gbdt zc+graph"] [--configs all]
                               [--out FILE]

Tasks (each a store of real statistics and its labels):
  nb201-c10   the shared 3,000 NB201 cells (../shared/data/stores/nb201-c10-3000, copied to ./bench-store;
              `store reconcile`, NB201 labels imported), target cifar10_valid; sizes up to 1,563;
  nb201-c100  the 1,000 NB201 cells on real CIFAR-100 images that `python bench/tasks.py --part cifar100`
              ingests into ./bench-tasks-store, target cifar100_valid; sizes up to 781;
  nb301       the shared 520 NAS-Bench-301 genotypes (`bench/tasks.py --part nb301` prepares
              ./bench-tasks-store-nb301), target cifar10_valid; sizes up to 469.
--configs all reads every statistics configuration of the task's store side by side (after
`python bench/add_proxies.py --task T` added the 2023-24 proxies as a second one); its fits are named apart.
--unique keeps one cell per isomorphism class (NB201's 6,466 unique cells: `SearchSpace.isomorphism_key`),
so no test cell duplicates a training cell, as in GRAF's de-duplicated protocol.

Every fit goes through `zcpipe.pipeline.training.train`, so each lands as a row of `models` (named
t-<task>-...; an existing row is reused, so a rerun resumes). Results go to bench/results/predictors-<task>.md
and .json. Last line: `best_kendall_156 <label> <mean τ>`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DARTS_LABELS, NB201_LABELS, ROOT, STORE_PROXIES, machine, shared_store

# (label in the table, predictor, options, largest train size it runs at: the stack's cross-validated fits
# cost five zc-gcn fits each)
TRAINED = [
    ("parzc", "parzc", {}, None),
    ("parzc graph", "parzc", {"graph": True}, None),
    ("mlp", "mlp", {}, None),
    ("mlp graph", "mlp", {"graph": True}, None),
    ("gbdt zc", "gbdt", {}, None),
    ("gbdt nodewise", "gbdt", {"features": "nodewise"}, None),
    ("gbdt graph", "gbdt", {"features": "graph"}, None),
    ("gbdt zc+graph", "gbdt", {"features": "zc,graph"}, None),
    ("gbdt zc+graph+nodewise", "gbdt", {"features": "zc,graph,nodewise"}, None),
    ("graf", "graf", {}, None),
    ("zc-gcn", "zc-gcn", {}, None),
    ("stack", "stack", {}, 469),
]
# Run only when named in --only: the ParZC ablations of earlier tables.
ABLATIONS = [
    ("parzc-nobayes", "parzc-nobayes", {}, None),
    ("parzc-notokenmix", "parzc-notokenmix", {}, None),
    ("parzc align=position", "parzc", {"align": "position"}, None),
    ("parzc global_token=true", "parzc", {"global_token": True}, None),
    # With the 2023-24 proxies beside the 2021 ones (`--configs all` on a store that holds both, or a store
    # ingested with all of them): the same predictors restricted to the 2021 set, and ParZC fed the new
    # node-wise proxies (MeCo's and ZiCo's per-layer terms) beside the paper's four.
    ("graf 2021 proxies", "graf", {"zc_proxies": ",".join(STORE_PROXIES)}, None),
    ("gbdt zc 2021 proxies", "gbdt", {"zc_proxies": ",".join(STORE_PROXIES)}, None),
    ("stack 2021 proxies", "stack", {"graf.zc_proxies": ",".join(STORE_PROXIES)}, 469),
    ("parzc +meco+zico", "parzc", {"proxies": "grad_norm,snip,synflow,fisher,meco,zico"}, None),
    ("parzc +meco", "parzc", {"proxies": "grad_norm,snip,synflow,fisher,meco"}, None),
    ("parzc graph +meco+zico", "parzc", {"proxies": "grad_norm,snip,synflow,fisher,meco,zico", "graph": True}, None),
]
ZERO_SHOT = ["vote"] + [f"proxy:{p}" for p in ("nwot", "synflow", "params", "jacov", "snip", "grasp", "zen")]
# The public reference code's logs (all 15,625 cells as test set, training cells included), and the paper.
REFERENCE = {78: 0.69, 156: 0.73, 469: 0.76, 781: 0.78, 1563: 0.78}
PAPER = {156: 0.706}


def _task(name: str) -> dict:
    stores = {"nb201-c10": None, "nb201-c100": ROOT / "bench-tasks-store", "nb301": ROOT / "bench-tasks-store-nb301"}
    return {
        "nb201-c10": {"space": "nb201", "target": "cifar10_valid", "data": None, "sizes": "78,156,469,781,1563"},
        "nb201-c100": {"space": "nb201", "target": "cifar100_valid", "data": "cifar100", "sizes": "78,156,469,781"},
        "nb301": {"space": "nds-darts", "target": "cifar10_valid", "data": None, "sizes": "78,156,469"},
    }[name] | {"name": name, "store": stores[name]}


def prepare(store: Path | None, task: dict) -> Path:
    if store is not None:
        return store
    if task["name"] == "nb201-c10":
        return shared_store("nb201-c10-3000", ROOT / "bench-store", "nb201", NB201_LABELS)
    if task["name"] == "nb301":
        return shared_store("nb301-c10", task["store"], "nds-darts", DARTS_LABELS)
    if not (task["store"] / "catalog.duckdb").exists():
        raise SystemExit(f"error: {task['store']} has no catalog; run `python bench/tasks.py --part cifar100` first")
    return task["store"]


def loader_figures(store: Path) -> tuple[float, float, float]:
    """Medians of 5: (load_training_set end to end, its tensor part (all shards' zarr read in one event
    loop), the baseline for that part: the same shards read one after another with `read_tensors`)."""
    from zcpipe.store import Catalog, read_tensors
    from zcpipe.store.tensor_reader import load_training_set, read_nodewise

    whole, tensors, naive = [], [], []
    dirs = Catalog(store).committed_shard_dirs("nb201")
    for _ in range(5):
        t = time.perf_counter()
        data = load_training_set(store, "nb201", target="cifar10_valid")
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


def resolve_configs(store: Path, task: dict, configs: str) -> str | None:
    """`--configs` as a `config_hash`: None (the store's only configuration), or the named ones."""
    from zcpipe.store.tensor_reader import config_hashes

    if configs != "all":
        return configs or None
    found = config_hashes(store, task["space"], dataset=task["data"])
    print(f"configurations of {task['space']}: {', '.join(found)}", flush=True)
    return ",".join(found)


def fit_one(job: tuple) -> dict:
    store, task, unique, configs, tag, label, predictor, hparams, size, seed = job
    import torch

    torch.set_num_threads(1)
    from zcpipe.pipeline import TrainConfig, train
    from zcpipe.store.model_artifacts import model_dir, model_names

    slug = re.sub(r"[^A-Za-z0-9_.=-]+", "-", label).strip("-")
    # Fits on other configurations get names of their own (a rerun resumes each set, never mixes them), and
    # so do fits under a --tag (a rerun after a code change must not resume the fits of the old code).
    tag = ("-c" + hashlib.sha1(configs.encode()).hexdigest()[:6] if configs else "") + (f"-{tag}" if tag else "")
    name = f"t-{task['name']}{'-unique' if unique else ''}{tag}-{slug}-n{size}-s{seed}"
    if name in model_names(store):  # resume: this fit is done
        config = model_dir(store, name)[1]
        m = config["metrics"]
        return {"label": label, "size": size, "seed": seed, "kendall": m["kendall"], "spearman": m["spearman"],
                "n_test": m["n"], "cpu": config["fit_cpu_seconds"]}  # fmt: skip
    cfg = TrainConfig(str(store), task["space"], predictor, task["target"], size, seed, name=name, data=task["data"],
                      hparams=hparams, unique=unique, config_hash=configs)  # fmt: skip
    r = train(cfg)
    return {"label": label, "size": size, "seed": seed, "kendall": r.metrics["kendall"],
            "spearman": r.metrics["spearman"], "n_test": r.metrics["n"], "cpu": r.fit_cpu_seconds}  # fmt: skip


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
    ap.add_argument("--task", choices=("nb201-c10", "nb201-c100", "nb301"), default="nb201-c10")
    ap.add_argument("--unique", action="store_true", help="one cell per isomorphism class (NB201)")
    ap.add_argument("--store", type=Path)
    ap.add_argument("--sizes", help="comma-separated train sizes (default: the task's)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--only", default="", help="comma-separated table labels to run (default: the main table)")
    ap.add_argument(
        "--configs",
        default="",
        help="statistics configurations read side by side: HASH[,HASH] or "
        "all (every one of the task's space and dataset); default: the store's only one",
    )
    ap.add_argument("--tag", default="", help="a name part for this run's fits (after a code change: fit anew)")
    ap.add_argument("--out", type=Path, help="default: bench/results/predictors-<task>[-unique].md")
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    task = _task(args.task)
    sizes = [int(s) for s in (args.sizes or task["sizes"]).split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    store = prepare(args.store, task)
    tag = task["name"] + ("-unique" if args.unique else "") + ("-configs" if args.configs else "")
    out_path = args.out or ROOT / "bench" / "results" / f"predictors-{tag}.md"

    loader = None
    if task["name"] == "nb201-c10" and not args.configs:  # the loader's figure: one configuration's shards
        loader = loader_figures(store)
        fast, part, naive = loader
        print(f"loader_seconds {fast:.3f} (target < 1 s); tensors {part:.3f} s vs sequential {naive:.3f} s "
              f"({naive / part:.2f}x)")  # fmt: skip

    only = set(filter(None, args.only.split(",")))
    trained = [t for t in TRAINED + ABLATIONS if t[0] in only] if only else TRAINED
    zero = [z for z in ZERO_SHOT if not only or z in only]
    configs = resolve_configs(store, task, args.configs)
    jobs = [(store, task, args.unique, configs, args.tag, z, z, {}, s, seed) for z in zero for s in sizes
            for seed in seeds]  # fmt: skip
    # biggest fits first, so the pool's tail is short
    jobs += sorted(
        [(store, task, args.unique, configs, args.tag, label, p, hp, s, seed) for label, p, hp, top in trained
         for s in sizes if top is None or s <= top for seed in seeds],
        key=lambda j: -j[8],
    )  # fmt: skip
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
    n_test = sorted({r["n_test"] for r in results})
    out = [
        f"Machine: {machine()}; {args.jobs} fits in parallel, 1 torch thread each; {wall / 60:.1f} min wall.",
        f"Task {tag}: store {store.name}, space {task['space']}, target {task['target']}"
        f"{', one cell per isomorphism class' if args.unique else ''}; seeds {args.seeds}; "
        f"{'configurations ' + configs + '; ' if configs else ''}"
        f"test cells {n_test[0]:,} to {n_test[-1]:,} (every labeled cell not trained on).",
    ]
    if loader:
        fast, part, naive = loader
        out.append(f"Loader: {fast:.3f} s for all cells end to end (target < 1 s); its tensor part {part:.3f} s "
                   f"against {naive:.3f} s reading the same shards one by one ({naive / part:.2f}x).")  # fmt: skip
    out += ["", "Kendall τ on every labeled cell not in the training set (mean ± std over seeds):", "",
            table(results, sizes, labels, "kendall")]  # fmt: skip
    if task["name"] == "nb201-c10" and not args.unique:
        out += [
            "| paper (ParZC, Table 2; test set includes training cells) | " + " | ".join(
                f"{PAPER[s]:.3f}" if s in PAPER else "" for s in sizes) + " |",
            "| reference code logs (all 15,625 cells, training cells included) | " + " | ".join(
                f"{REFERENCE[s]:.2f}" if s in REFERENCE else "" for s in sizes) + " |",
        ]  # fmt: skip
    out += ["", "Spearman ρ:", "", table(results, sizes, labels, "spearman"), "",
            "CPU seconds per fit at 156 cells: " + ", ".join(f"{lab} {cpu[lab]:.1f}" for lab in labels
                                                             if cpu[lab] > 0.05)]  # fmt: skip
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(out) + "\n")
    out_path.with_suffix(".json").write_text(json.dumps({"task": tag, "results": results}, indent=1))
    print("\n".join(out))
    at156 = {lab: statistics.mean(v) for lab in labels
             if (v := [r["kendall"] for r in results if r["label"] == lab and r["size"] == 156])}  # fmt: skip
    best = max(at156, key=at156.get) if at156 else None
    print(f"best_kendall_156 {best} {at156[best]:.4f}" if best else "best_kendall_156 none nan")


if __name__ == "__main__":
    main()
