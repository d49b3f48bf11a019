"""The store at NB201 scale: 15,625 architectures of synthetic node-wise statistics (generated, not computed),
committed as an ingest commits them (one shard per 16 archs), then compacted; SQL over `layers` and `archs`
and the training loader timed on local disk and on S3 (moto's server on 127.0.0.1).

    python bench/store.py [--shard-size 16] [--no-s3]

Figures are seconds and ratios against a baseline measured in the same run: the same SQL on one Parquet
file with bare DuckDB, and the loader's arrays read from one .npy file. Each store is measured by a reader
on a fresh local cache: the cold columns are its first query and first load (on S3 they fetch the catalog
and the shard files: store/shard_cache.py), the others are best of 3 after. Target: SQL and loader < 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zcpipe.store import Catalog, TensorBlock, write_staged_shard
from zcpipe.store.compact import compact
from zcpipe.store.shard_schema import arch_schema, layer_schema
from zcpipe.store.tensor_reader import load_training_set
from zcpipe.workers.spaces import get_space
from zcpipe.workers.spaces.nb201 import CONV_OPS, EDGES, parse_cell

PROXIES = ["synflow", "snip", "grad_norm", "fisher", "grasp", "jacov"]
LAYER_PROXIES = ["synflow", "snip", "grad_norm", "fisher", "grasp"]
CHASH = "bench0000000000"
LAYERS_SQL = "SELECT op_type, count(*) AS n, avg(synflow) AS synflow, avg(snip) AS snip FROM layers GROUP BY ALL"
ARCHS_SQL = "SELECT status, count(*) AS n, avg(synflow) AS synflow, corr(snip, fisher) AS r FROM archs GROUP BY ALL"


def synthetic(seed: int = 0):
    """(archs table, layers table, tensors) of every NB201 cell, with random proxy values."""
    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    archs = list(space.enumerate())
    slots = space.slots()
    where = {s: i for i, s in enumerate(slots)}
    cells = sorted({s.split("/")[0] for s in slots if "/edge" in s})
    fixed = [s for s in slots if "/edge" not in s]
    l_arch, l_slot = [], []
    mask = np.zeros((len(archs), len(slots)), dtype=bool)
    for a, arch in enumerate(archs):
        ops = parse_cell(arch)
        used = list(fixed)
        for (to, frm), op in zip(EDGES, ops, strict=True):
            if op in CONV_OPS:
                used += [f"{c}/edge{to}<-{frm}/{op}/conv" for c in cells]
        idx = sorted(where[s] for s in used)
        mask[a, idx] = True
        l_arch += [a] * len(idx)
        l_slot += idx
    n = len(archs)
    arch_table = _arch_table(archs, rng)
    l_arch, l_slot = np.array(l_arch), np.array(l_slot)
    m = len(l_arch)
    layer_table = pa.table(
        {
            "space": pa.array(["nb201"] * m),
            "arch": pa.array(np.array(archs, dtype=object)[l_arch]),
            "config_hash": pa.array([CHASH] * m),
            "shard_id": pa.array([""] * m),
            "slot": pa.array(np.array(slots, dtype=object)[l_slot]),
            "layer_index": pa.array(l_slot.astype(np.int32)),
            "op_type": pa.array(np.where(np.char.endswith(np.array(slots)[l_slot], "/conv"), "Conv2d", "Linear")),
            "op": pa.array(np.array([s.split("/")[-2] if "/" in s else s for s in slots], dtype=object)[l_slot]),
            "shape": pa.array([[16, 16, 3, 3]] * m, pa.list_(pa.int32())),
            "numel": pa.array(rng.integers(256, 40000, m)),
            "params": pa.array(rng.integers(256, 40000, m)),
            "flops": pa.array(rng.integers(10**5, 10**7, m)),
            **{p: pa.array(rng.lognormal(0, 2, m)) for p in LAYER_PROXIES},
        }
    ).cast(layer_schema(LAYER_PROXIES))
    tensor_proxies = [*LAYER_PROXIES, "params", "flops"]
    values = np.where(mask[:, None, :], rng.lognormal(0, 2, (n, len(tensor_proxies), len(slots))), np.nan)
    return arch_table, layer_table, TensorBlock(archs, tensor_proxies, slots, values, mask)


def _arch_table(archs: list[str], rng) -> pa.Table:
    n = len(archs)
    cols = {
        "space": ["nb201"] * n,
        "arch": archs,
        "config_hash": [CHASH] * n,
        "run_id": ["bench"] * n,
        "shard_id": [""] * n,
        "status": ["ok"] * n,
        "params": rng.uniform(0.07, 1.5, n) * 1e6,
        "flops": rng.uniform(7, 220, n) * 1e6,
        **{p: rng.lognormal(0, 2, n) for p in PROXIES},
        "seconds": rng.uniform(0.5, 3, n),
    }
    schema = arch_schema(PROXIES)
    return pa.table({f.name: pa.array(cols.get(f.name, [None] * n), f.type) for f in schema}, schema=schema)


def commit_all(store: str, archs: pa.Table, layers: pa.Table, tensors: TensorBlock, shard_size: int) -> int:
    """Commit in shards of `shard_size`, as an ingest does; returns the number of shards."""
    cat = Catalog(store)
    arch_names = archs.column("arch").to_pylist()
    # layers are in arch order: shard k's layer rows are one slice
    pos = {a: i for i, a in enumerate(arch_names)}
    layer_arch = np.array([pos[a] for a in layers.column("arch").to_pylist()])
    layer_starts = np.searchsorted(layer_arch, np.arange(0, len(arch_names) + shard_size, shard_size))
    manifests = []
    for k, start in enumerate(range(0, len(arch_names), shard_size)):
        sid = f"bench-{k:05d}"
        stop = min(start + shard_size, len(arch_names))
        part = archs.slice(start, stop - start)
        part = part.set_column(part.schema.get_field_index("shard_id"), "shard_id", pa.array([sid] * part.num_rows))
        lay = layers.slice(layer_starts[k], layer_starts[k + 1] - layer_starts[k])
        lay = lay.set_column(lay.schema.get_field_index("shard_id"), "shard_id", pa.array([sid] * lay.num_rows))
        block = TensorBlock(arch_names[start:stop], tensors.proxies, tensors.slots, tensors.values[start:stop],
                            tensors.mask[start:stop])  # fmt: skip
        meta = {"shard_id": sid, "space": "nb201", "run_id": "bench", "config_hash": CHASH}
        manifests.append(write_staged_shard(store, **meta, arch_rows=part, layer_rows=lay, proxy_names=PROXIES,
                                            tensors=block))  # fmt: skip
    with cat.writer() as w:  # one catalog commit for all (one publish on S3), as a bench shortcut
        for m in manifests:
            w.commit(m)
    return len(manifests)


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(store: str, cache: Path, repeat: int = 3) -> dict[str, float]:
    """A reader on a node that has not read the store yet (a fresh local cache: the catalog and, on S3,
    the shard files are fetched on first use), then best of `repeat` warm."""
    os.environ["ZCPIPE_CACHE_DIR"] = str(cache)
    cat = Catalog(store)
    t0 = time.perf_counter()
    cat.query("SELECT count(*) FROM archs")
    cold = time.perf_counter() - t0  # the catalog, and on S3 every shard's Parquet files
    t0 = time.perf_counter()
    load_training_set(store, "nb201")
    loader_cold = time.perf_counter() - t0  # on S3 the tensors too
    return {
        "open (cold)": cold,
        "loader (cold)": loader_cold,
        "layers SQL": timed(lambda: cat.query(LAYERS_SQL), repeat),
        "archs SQL": timed(lambda: cat.query(ARCHS_SQL), repeat),
        "loader": timed(lambda: load_training_set(store, "nb201"), min(repeat, 2)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shard-size", type=int, default=16)
    ap.add_argument("--no-s3", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    archs, layers, tensors = synthetic()
    print(f"generated {archs.num_rows} archs, {layers.num_rows} layer rows, tensors {tensors.values.shape} "
          f"in {time.perf_counter() - t0:.1f}s")  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="zcpipe-bench-store-"))
    os.environ["ZCPIPE_CACHE_DIR"] = str(tmp / "cache")

    # Baseline: the same SQL on one Parquet file with bare DuckDB; the loader's arrays from one .npy.
    pq.write_table(layers, tmp / "layers.parquet")
    pq.write_table(archs, tmp / "archs.parquet")
    np.save(tmp / "values.npy", tensors.values)
    con = duckdb.connect()
    base = {
        "layers SQL": timed(lambda: con.sql(LAYERS_SQL.replace("layers", f"'{tmp / 'layers.parquet'}'")).arrow()),
        "archs SQL": timed(lambda: con.sql(ARCHS_SQL.replace("archs", f"'{tmp / 'archs.parquet'}'")).arrow()),
        "loader": timed(lambda: (pq.read_table(tmp / "archs.parquet"), np.load(tmp / "values.npy")), repeat=2),
    }
    base["open (cold)"] = base["loader (cold)"] = float("nan")

    targets = [("local", str(tmp / "store"))]
    server = None
    if not args.no_s3:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.s3 import moto_server, new_bucket

        server = moto_server()
        env = server.__enter__()
        os.environ.update(env)
        targets.append(("moto S3", f"s3://{new_bucket(env)}/store"))
    rows = []
    try:
        for where, store in targets:
            t0 = time.perf_counter()
            n = commit_all(store, archs, layers, tensors, args.shard_size)
            print(f"{where}: committed {n} shards in {time.perf_counter() - t0:.1f}s", flush=True)
            rows.append((where, f"{n} shards", measure(store, tmp / f"reader-{len(rows)}", repeat=1)))
            print(f"{where}, {n} shards: {rows[-1][2]}", flush=True)
            t0 = time.perf_counter()
            summary = compact(store)
            print(f"{where}: {summary.line()} in {time.perf_counter() - t0:.1f}s", flush=True)
            rows.append((where, f"compacted ({summary.shards_after})", measure(store, tmp / f"reader-{len(rows)}")))
    finally:
        if server is not None:
            server.__exit__(None, None, None)
        shutil.rmtree(tmp, ignore_errors=True)  # a few hundred MB of stores and caches
    keys = ["open (cold)", "loader (cold)", "layers SQL", "archs SQL", "loader"]
    print(f"\n| store | shards | {' | '.join(keys)} |")
    print("|---|---|" + "---|" * len(keys))
    baseline = ["-" if np.isnan(base[k]) else f"{base[k]:.3f}s" for k in keys]
    print("| baseline (one file, bare DuckDB / numpy) | 1 | " + " | ".join(baseline) + " |")
    for where, shards, m in rows:
        cells = [f"{m[k]:.3f}s" + ("" if np.isnan(base[k]) else f" ({m[k] / base[k]:.1f}x)") for k in keys]
        print(f"| {where} | {shards} | " + " | ".join(cells) + " |")
    print("\ntarget: every store figure under 1 s (ratios in brackets are against the baseline row)")


if __name__ == "__main__":
    main()
