"""TG-NAS and ZC-GCN on real labels: the transfer matrix, the in-space table beside ParZC, the pruning
search, and streaming training at NAS-Bench-101 scale.

    python bench/tgnas.py --part transfer   # train space -> test space, τ/ρ (NB201, NB101, DARTS), 3 seeds
    python bench/tgnas.py --part zeroshot   # NB101 + DARTS -> NB201, TG-NAS with and without the graph's shape
    python bench/tgnas.py --part zeroshot-zc  # the same with whole-network proxies, on the cells with statistics
    python bench/tgnas.py --part inspace    # NB201, the ParZC benchmark's train sizes and cells, 3 seeds
    python bench/tgnas.py --part prune      # pruning search with the NB101+DARTS and NB201 models
    python bench/tgnas.py --part stream [--cells 423624]   # official-format tfrecord -> import -> training

Labels come from ../shared/data (NB201 15,625 cells; NB101 500 rows = 292 cells; DARTS 725 cells) in
./bench-tgnas-store; the in-space part reads the statistics of ./bench-store (bench/predictors.py makes
it) so every predictor trains and tests on the same cells: the split of the 3,000 store cells that
`zcpipe train --train-size N --seed S` draws. zeroshot-zc makes ./bench-tgnas-zc-store: the shared NB201 and
NB301 stores' statistics and the 292 NB101 cells' (ingested here, seven proxies: see `zc_store`). Results are
printed as markdown and written to bench/results/tgnas-<part>.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CIFAR_NPZ, NB201_LABELS, ROOT, SHARED, STORE_PROXIES, machine, require, shared_stores

from zcpipe.pipeline import import_labels
from zcpipe.pipeline.training.node_stats import attach_node_stats
from zcpipe.predictors import get_predictor, rank_metrics
from zcpipe.predictors.protocol import split
from zcpipe.store.graph_reader import load_graph_set
from zcpipe.store.tensor_reader import load_training_set

LABEL_FILES = {
    "nb201": NB201_LABELS,
    "nb101": SHARED / "nb101" / "labels.jsonl",
    "nds-darts": SHARED / "darts" / "labels.jsonl",
}
TARGET = "cifar10_valid"
RESULTS = ROOT / "bench" / "results"


def label_store(path: Path) -> Path:
    if not (path / "catalog.duckdb").exists():
        for space, f in LABEL_FILES.items():
            import_labels(str(path), space, str(require(f)))
    return path


def zc_store(path: Path, workers: int) -> tuple[Path, str]:
    """The zero-shot spaces with statistics: the shared NB201 (3,000 cells) and NB301 (520 genotypes, C=32)
    stores' shards, and the 292 labeled NB101 cells ingested here with seven of their proxies and the same
    images, batch and seed (NB101's network as the benchmark trained it); every space's labels imported.
    A rerun resumes. Returns the store and the NB101 configuration's hash."""
    import os
    import tempfile

    from zcpipe.pipeline.ingest import IngestConfig, ingest

    shared_stores(["nb201-c10-3000", "nb301-c10"], path, LABEL_FILES)
    rows = [json.loads(line) for line in require(LABEL_FILES["nb101"]).read_text().splitlines() if line.strip()]
    specs = sorted({json.dumps({"matrix": r["matrix"], "ops": r["ops"]}) for r in rows})
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(specs) + "\n")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # The shared stores' proxies less the four that cost most on NB101's network (C=128: 22 s per cell per
    # worker with all eleven, two hours for 292 cells here): grasp's double backward, zen's extra forwards,
    # epe_nas's per-image Jacobians, fisher's activation gradients. params and flops come with every run.
    proxies = tuple(p for p in STORE_PROXIES if p not in ("params", "flops", "grasp", "zen", "epe_nas", "fisher"))
    cfg = IngestConfig(space="nb101", store=str(path), archs_file=f.name, proxies=proxies, data="cifar10",
                       data_root=str(CIFAR_NPZ), batch_size=64, seed=0, workers=workers)  # fmt: skip
    try:
        summary = ingest(cfg, progress=sys.stderr.isatty())
    finally:
        Path(f.name).unlink()
    print(summary.line(), file=sys.stderr)
    return path, summary.config_hash


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f}±{statistics.stdev(values):.3f}"


def transfer(store: Path, seeds: list[int]) -> str:
    spaces = ["nb201", "nb101", "nds-darts"]
    trains = [["nb201"], ["nb101"], ["nds-darts"], ["nb101", "nds-darts"]]
    tests = {s: load_graph_set(store, [s], target=TARGET) for s in spaces}
    lines = [
        "| train → test | " + " | ".join(spaces) + " | fit s |",
        "| --- | " + " | ".join("---" for _ in spaces) + " | --- |",
    ]
    for train in trains:
        pool = load_graph_set(store, train, target=TARGET)
        got: dict[str, list[tuple[float, float]]] = {s: [] for s in spaces}
        seconds = []
        for seed in seeds:
            p = get_predictor("tgnas")
            t0 = time.perf_counter()
            p.fit(pool, seed=seed)
            seconds.append(time.perf_counter() - t0)
            for s in spaces:
                if s not in train:
                    m = rank_metrics(p.predict(tests[s]).score, tests[s].labels)
                    got[s].append((m["kendall"], m["spearman"]))
        cells = [
            (f"τ {_cell([k for k, _ in got[s]])} / ρ {_cell([r for _, r in got[s]])}" if got[s] else "(trains)")
            for s in spaces
        ]
        lines.append(
            f"| {' + '.join(train)} ({len(pool)} cells) | " + " | ".join(cells) + f" | {np.mean(seconds):.0f} |"
        )
    return "\n".join(lines)


def _zeroshot_row(label: str, hp: dict, pool, test, seeds: list[int]) -> str:
    """One table row: TG-NAS with options `hp` fitted on `pool` once per seed, τ and ρ on `test`."""
    got, seconds = [], []
    for seed in seeds:
        p = get_predictor("tgnas", **hp)
        t0 = time.perf_counter()
        p.fit(pool, seed=seed)
        seconds.append(time.perf_counter() - t0)
        m = rank_metrics(p.predict(test).score, test.labels)
        got.append((m["kendall"], m["spearman"]))
        print(f"{label} seed {seed}: τ {m['kendall']:.4f} ρ {m['spearman']:.4f}", flush=True)
    return f"| {label} | {_cell([k for k, _ in got])} | {_cell([r for _, r in got])} | {np.mean(seconds):.0f} |"


def zeroshot(store: Path, seeds: list[int]) -> str:
    """NB101 + DARTS -> every NB201 cell (the paper's zero-shot setting), TG-NAS as published and with the
    graph's operator-agnostic shape on its global node (`graph_shape=true`)."""
    pool = load_graph_set(store, ["nb101", "nds-darts"], target=TARGET)
    test = load_graph_set(store, ["nb201"], target=TARGET)
    lines = ["| model (NB101 + DARTS → NB201) | τ | ρ | fit s |", "| --- | --- | --- | --- |"]
    for label, hp in (("tgnas", {}), ("tgnas graph_shape=true", {"graph_shape": True})):
        lines.append(_zeroshot_row(label, hp, pool, test, seeds))
    lines.append("| published (TG-NAS paper) | 0.57 | 0.77 | |")
    return "\n".join(lines)


def zeroshot_zc(store: Path, nb101_config: str, seeds: list[int], proxies: list[str]) -> str:
    """NB101 + DARTS -> NB201 on the cells with statistics, TG-NAS as published beside TG-NAS with each
    whole-network proxy set of `proxies` (`;`-separated sets) read as standings within each space."""
    from zcpipe.pipeline.training.graph_scores import load_scored_graphs

    pool = load_scored_graphs(str(store), ["nb101", "nds-darts"], TARGET, nb101_config)
    test = load_scored_graphs(str(store), ["nb201"], TARGET, None)
    counts = {s: int((pool.spaces == s).sum()) for s in ("nb101", "nds-darts")}
    lines = [f"Train: {counts['nb101']} NB101 cells + {counts['nds-darts']} DARTS genotypes with statistics; "
             f"test: the {len(test)} NB201 cells with statistics (`{store.name}`; {pool.config_hash}).", "",
             "| model (NB101 + DARTS → NB201) | τ | ρ | fit s |", "| --- | --- | --- | --- |"]  # fmt: skip
    for label, hp in [("tgnas", {})] + [(f"tgnas zc_proxies={p}", {"zc_proxies": p}) for p in proxies]:
        lines.append(_zeroshot_row(label, hp, pool, test, seeds))
    # What the proxies alone give on the test cells (no training), for scale.
    for name in sorted({n for p in proxies for n in p.split(",")}):
        m = rank_metrics(test.arch_stats[:, test.arch_stat_names.index(name)], test.labels)
        lines.append(f"| {name} alone (no training) | {m['kendall']:.3f} | {m['spearman']:.3f} | |")
    lines.append("| published (TG-NAS paper) | 0.57 | 0.77 | |")
    return "\n".join(lines)


def inspace(store: Path, stats_store: Path, sizes: list[int], seeds: list[int]) -> str:
    stats = load_training_set(stats_store, "nb201", target=TARGET)
    graphs = load_graph_set(store, ["nb201"], target=TARGET, archs={"nb201": stats.archs})
    assert graphs.archs == stats.archs
    zc = attach_node_stats(graphs, stats)
    rows = {"tgnas": {}, "zc-gcn": {}}
    for name, data in (("tgnas", graphs), ("zc-gcn", zc)):
        for n in sizes:
            taus = []
            for seed in seeds:
                tr, te = split(len(data), n, seed)  # the same cells as `zcpipe train --train-size n --seed seed`
                p = get_predictor(name)
                p.fit(data.subset(tr), seed=seed)
                test = data.subset(te)
                taus.append(rank_metrics(p.predict(test).score, test.labels)["kendall"])
            rows[name][n] = taus
            print(name, n, _cell(taus), flush=True)
    lines = [
        "| predictor | " + " | ".join(map(str, sizes)) + " |",
        "| --- | " + " | ".join("---" for _ in sizes) + " |",
    ]
    for name, by_size in rows.items():
        lines.append(f"| {name} | " + " | ".join(_cell(by_size[n]) for n in sizes) + " |")
    return "\n".join(lines)


def prune(store: Path, stats_store: Path) -> str:
    from zcpipe.pipeline import TrainConfig, train
    from zcpipe.pipeline.training.prune import prune_search
    from zcpipe.store.model_artifacts import model_names

    lines = [
        "| model | chosen cell | C10 test | C100 valid | IN16 valid | search s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    configs = [
        TrainConfig(
            str(store), None, "tgnas", TARGET, None, 0, "bench-tgnas-nb101.darts", train_spaces=("nb101", "nds-darts")
        ),
        TrainConfig(str(store), "nb201", "tgnas", TARGET, 156, 0, "bench-tgnas-nb201-n156"),
        TrainConfig(str(store), "nb201", "tgnas", TARGET, 1563, 0, "bench-tgnas-nb201-n1563"),
    ]
    for cfg in configs:
        if cfg.name not in model_names(str(store)):  # a rerun reuses the models
            train(cfg)
        r = prune_search(str(store), cfg.name)
        lab = r.labels
        lines.append(
            f"| {cfg.name} | `{r.arch}` | {lab.get('cifar10_test', float('nan')):.2f} | "
            f"{lab.get('cifar100_valid', float('nan')):.2f} | {lab.get('imagenet16-120_valid', float('nan')):.2f} | "
            f"{r.seconds:.2f} |"
        )
    # Zero-shot TG-NAS on the cells that have statistics, beside the in-space table (same cells as zc-gcn's tests).
    from zcpipe.pipeline.training.fit import load_model

    stats = load_training_set(stats_store, "nb201", target=TARGET)
    cells = load_graph_set(store, ["nb201"], target=TARGET, archs={"nb201": stats.archs})
    model, _ = load_model(str(store), "bench-tgnas-nb101.darts")
    m = rank_metrics(model.predict(cells).score, cells.labels)
    lines.append(
        f"\nZero-shot (NB101 + DARTS → NB201) on the {len(cells)} store cells: "
        f"τ {m['kendall']:.3f} ρ {m['spearman']:.3f}"
    )
    return "\n".join(lines)


def stream(work: Path, cells: int) -> str:
    """An official-structure tfrecord of `cells` random valid NB101 cells (synthetic accuracies: this
    measures the path, not the ranking), imported, then TG-NAS trained on every cell in batches."""
    from zcpipe.pipeline.labels.nb101_tfrecord import encode_record, write_records
    from zcpipe.workers.spaces.nb101 import CANONICAL_OPS, MAX_EDGES, prune

    work.mkdir(parents=True, exist_ok=True)
    path = work / "synthetic_only108.tfrecord"
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()

    def records():
        made = 0
        while made < cells:
            m = np.triu(rng.integers(0, 2, (7, 7)), 1)
            ops = ["input", *(CANONICAL_OPS[i] for i in rng.integers(0, 3, 5)), "output"]
            try:
                pm, pops = prune(m, ops)
            except ValueError:
                continue
            if pm.sum() > MAX_EDGES:
                continue
            acc = float(rng.uniform(0.8, 0.95))
            ev = [{"current_epoch": 108.0, "validation_accuracy": acc, "test_accuracy": acc}]
            made += 1
            yield encode_record("0" * 32, 108, pm.tolist(), pops, ev, 1)

    write_records(path, records())
    t_write = time.perf_counter() - t0
    store = work / "store"
    t0 = time.perf_counter()
    n_rows = import_labels(str(store), "nb101", str(path)).rows
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = load_graph_set(store, ["nb101"], target=TARGET)
    t_load = time.perf_counter() - t0
    distinct = len(data)
    # Random cells collapse onto far fewer isomorphism classes than the benchmark's 423,624; the fit and the
    # prediction run on that many graphs all the same (the distinct ones tiled), as they would on the real file.
    reps = -(-cells // len(data))
    tiled = np.tile(np.arange(len(data)), reps)[:cells]
    data = data.subset(tiled)
    p = get_predictor("tgnas", batch_size=256, max_steps=1000)
    t0 = time.perf_counter()
    p.fit(data, seed=0)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    p.predict(data)
    t_pred = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return "\n".join(
        [
            "| records written | distinct cells | label rows | write s | import s | load s "
            "| fit s (1000 steps × 256 of all graphs) | predict all graphs s | peak RSS MiB |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            f"| {cells} | {distinct} | {n_rows} | {t_write:.0f} | {t_import:.0f} | {t_load:.1f} | {t_fit:.0f} | "
            f"{t_pred:.0f} | {rss:.0f} |",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["transfer", "zeroshot", "zeroshot-zc", "inspace", "prune", "stream"],
                    required=True)  # fmt: skip
    ap.add_argument("--store", type=Path, default=ROOT / "bench-tgnas-store")
    ap.add_argument("--stats-store", type=Path, default=ROOT / "bench-store")
    ap.add_argument("--sizes", default="78,156,469,781,1563")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--cells", type=int, default=423_624)
    ap.add_argument("--zc-store", type=Path, default=ROOT / "bench-tgnas-zc-store")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--zc-sets", default="nwot;nwot,synflow,jacov;nwot,synflow,jacov,params,flops",
                    help="zeroshot-zc: `;`-separated zc_proxies sets")  # fmt: skip
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    if args.part == "stream":
        out = stream(ROOT / "bench-stream", args.cells)
    elif args.part == "zeroshot-zc":
        out = zeroshot_zc(*zc_store(args.zc_store, args.workers), seeds, args.zc_sets.split(";"))
    else:
        store = label_store(args.store)
        if args.part == "transfer":
            out = transfer(store, seeds)
        elif args.part == "zeroshot":
            out = zeroshot(store, seeds)
        elif args.part == "inspace":
            out = inspace(store, args.stats_store, [int(s) for s in args.sizes.split(",")], seeds)
        else:
            out = prune(store, args.stats_store)
    text = f"{out}\n\n({machine()}; {time.perf_counter() - t0:.0f} s; seeds {args.seeds})\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"tgnas-{args.part}.md").write_text(text)
    print(text)
    print(json.dumps({"part": args.part, "seconds": round(time.perf_counter() - t0)}))


if __name__ == "__main__":
    main()
