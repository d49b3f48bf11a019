"""The training-stage reader: (space, config_hash, target label) -> aligned arrays.

Node-wise statistics come from the shards' `tensors.zarr` on the space's slot axis, so
column s is the same layer position in every architecture; whole-network values come
from `archs`, labels from `labels`. Missing values stay NaN and come with a mask.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import numpy as np
import zarr.api.asynchronous as za
from zarr.core.sync import sync as zarr_sync

from zcpipe.store import shard_cache
from zcpipe.store.catalog import Catalog
from zcpipe.store.graph_reader import GraphSet
from zcpipe.store.read_errors import TrainingDataError

# archs columns that are provenance, not statistics.
_NOT_FEATURES = {"seconds"}


@dataclass(frozen=True)
class TrainingSet:
    """Statistics (and labels) of A architectures of one space under one configuration."""

    space: str
    config_hash: str
    archs: list[str]
    proxies: list[str]  # node-wise proxies, axis 1 of `nodewise`
    slots: list[str]  # the space's slot axis, axis 2 of `nodewise`
    nodewise: np.ndarray  # [A, P, S] float64; NaN where the slot is absent or the value was not computed
    mask: np.ndarray  # [A, S] bool: the architecture has a weight layer at this slot
    scalar_names: list[str]
    scalars: np.ndarray  # [A, Q] float64 whole-network values; NaN where NULL
    target: str | None = None
    labels: np.ndarray | None = None  # [A] float64, mean over the label rows of each architecture
    # The operator graphs of `archs`, in the same order, where a predictor reads graph features beside
    # the statistics (the training stage loads them for it; see `Predictor.input_kind`).
    graphs: GraphSet | None = None

    def __len__(self) -> int:
        return len(self.archs)

    def subset(self, index: np.ndarray | list[int]) -> TrainingSet:
        idx = np.asarray(index, dtype=int)
        return replace(
            self,
            archs=[self.archs[i] for i in idx],
            nodewise=self.nodewise[idx],
            mask=self.mask[idx],
            scalars=self.scalars[idx],
            labels=None if self.labels is None else self.labels[idx],
            graphs=None if self.graphs is None else self.graphs.subset(idx),
        )

    def scalar(self, name: str) -> np.ndarray:
        if name not in self.scalar_names:
            raise TrainingDataError(
                f"proxy {name!r} is not in this store's {self.space} statistics (config {self.config_hash}); "
                f"it has: {', '.join(self.scalar_names)}"
            )
        return self.scalars[:, self.scalar_names.index(name)]


def config_hashes(
    store: str | Path, space: str, con: duckdb.DuckDBPyConnection | None = None, dataset: str | None = None
) -> list[str]:
    """The statistics configurations of `space` (of one `dataset`'s statistics, where given)."""
    if con is None:
        with Catalog(store).reader() as con:
            return config_hashes(store, space, con, dataset)
    if dataset is not None:
        rows = con.execute(
            "SELECT DISTINCT config_hash FROM archs WHERE space = ? AND dataset = ? ORDER BY 1", [space, dataset]
        ).fetchall()
    else:
        rows = con.execute("SELECT DISTINCT config_hash FROM shards_t WHERE space = ? ORDER BY 1", [space]).fetchall()
    return [r[0] for r in rows]


def configs_by_space(store: str | Path) -> dict[str, list[str]]:
    """Every statistics configuration the store holds, by space."""
    with Catalog(store).reader() as con:
        rows = con.execute("SELECT DISTINCT space, config_hash FROM shards_t ORDER BY 1, 2").fetchall()
    out: dict[str, list[str]] = {}
    for space, config_hash in rows:
        out.setdefault(space, []).append(config_hash)
    return out


def resolve_config(
    store: str | Path,
    space: str,
    config_hash: str | None,
    con: duckdb.DuckDBPyConnection | None = None,
    dataset: str | None = None,
) -> str:
    """The one configuration of `space` to read: the given one, or the only one the store has (of
    `dataset`'s statistics, where given)."""
    found = config_hashes(store, space, con, dataset)
    if not found:
        of = f" on {dataset}" if dataset else ""
        raise TrainingDataError(f"store {store} has no statistics for space {space!r}{of}; ingest some first")
    if config_hash is None:
        if len(found) > 1:
            raise TrainingDataError(
                f"store {store} holds {len(found)} configurations of {space}: {', '.join(found)}; pick one "
                "(`config_hash`, or the dataset, `data`; the store's info describes them)",
                options=["config_hash", "data"],
            )
        return found[0]
    if config_hash not in found:
        raise TrainingDataError(
            f"config_hash {config_hash!r} has no statistics for {space} in {store}; it has: {', '.join(found)}"
        )
    return config_hash


def labels_available(store: str | Path, space: str) -> list[str]:
    with Catalog(store).reader() as con:
        rows = con.execute("SELECT DISTINCT label FROM labels_t WHERE space = ? ORDER BY 1", [space]).fetchall()
    return [r[0] for r in rows]


def load_training_set(
    store: str | Path,
    space: str,
    *,
    target: str | None = None,
    config_hash: str | None = None,
    dataset: str | None = None,
) -> TrainingSet:
    """Every architecture of `space` with statistics under the configuration (status ok or partial),
    restricted to those with a `target` label when one is named; sorted by arch key.

    `config_hash` may name several configurations, comma-separated (`b73d81fda35aaef5,0c1e...`): their
    statistics are read side by side for the architectures all of them hold (see `merge_training_sets`),
    so proxies ingested later, as a configuration of their own, join the ones a store already had."""
    hashes = [h.strip() for h in config_hash.split(",")] if config_hash else []
    if len(hashes) > 1:
        if len(set(hashes)) != len(hashes) or not all(hashes):
            raise TrainingDataError(f"config_hash {config_hash!r}: name each configuration once, comma-separated")
        parts = [_load_one(store, space, target, h, dataset) for h in hashes]
        return merge_training_sets(parts)
    return _load_one(store, space, target, config_hash, dataset)


def merge_training_sets(parts: list[TrainingSet]) -> TrainingSet:
    """One training set from several configurations of one space: the architectures every part holds
    (sorted, as each part is), each part's proxies beside the earlier parts' ones. Where two parts hold a
    proxy of the same name (two runs of `nwot`, say), the part named first supplies it: one column per
    name, so a predictor's input stays what its options name. Slot axes must agree; the labels are the first
    part's (every part read the same `labels` rows for the same cells)."""
    first = parts[0]
    for p in parts[1:]:
        if p.space != first.space or p.slots != first.slots:
            raise TrainingDataError(
                f"configurations {first.config_hash} and {p.config_hash} have different slot axes; "
                "only configurations of one space and network read together"
            )
    common = sorted(set(first.archs).intersection(*(p.archs for p in parts[1:])))
    if not common:
        raise TrainingDataError(
            f"configurations {', '.join(p.config_hash for p in parts)} share no {first.space} architecture; "
            "ingest the same cells under each (`--archs-file`, or the same `--seed` and `--limit`)"
        )
    aligned = []
    for p in parts:
        row = {a: i for i, a in enumerate(p.archs)}
        aligned.append(p if p.archs == common else p.subset([row[a] for a in common]))
    proxies, values, names, scalars = [], [], [], []
    for p in aligned:
        keep = [i for i, n in enumerate(p.proxies) if n not in proxies]
        proxies += [p.proxies[i] for i in keep]
        values.append(p.nodewise[:, keep])
        keep = [i for i, n in enumerate(p.scalar_names) if n not in names]
        names += [p.scalar_names[i] for i in keep]
        scalars.append(p.scalars[:, keep])
    return replace(
        aligned[0],
        config_hash=",".join(p.config_hash for p in parts),
        proxies=proxies,
        nodewise=np.concatenate(values, axis=1),
        scalar_names=names,
        scalars=np.concatenate(scalars, axis=1),
    )


def _load_one(
    store: str | Path, space: str, target: str | None, config_hash: str | None, dataset: str | None
) -> TrainingSet:
    """`load_training_set` for one configuration."""
    catalog = Catalog(store)
    with catalog.reader() as con:
        chash = resolve_config(store, space, config_hash, con, dataset)
        # Each arch's current shard (a --retry-failed recomputation supersedes an earlier row).
        owned = con.execute(
            "SELECT i.arch, s.path FROM arch_index i JOIN shards_t s USING (shard_id) "
            "WHERE i.space = ? AND i.config_hash = ?",
            [space, chash],
        ).fetchall()
        rels = sorted({path for _, path in owned})
        where = dict(zip(rels, shard_cache.shard_dirs(catalog.layout, rels, ("tensors.zarr",)), strict=True))
        owner = {arch: where[path] for arch, path in owned}
        rel = con.sql(
            "SELECT * FROM archs WHERE space = ? AND config_hash = ? AND status <> 'failed' ORDER BY arch",
            params=[space, chash],
        )
        numeric = [c for c, t in zip(rel.columns, rel.types, strict=True) if str(t) == "DOUBLE"]
        table = rel.to_arrow_table()
        labels: dict[str, float] = {}
        if target is not None:
            labels = dict(
                con.execute(
                    "SELECT arch, avg(value) FROM labels_t WHERE space = ? AND label = ? GROUP BY arch",
                    [space, target],
                ).fetchall()
            )
    if target is not None and not labels:
        have = labels_available(store, space)  # a second connection, on the error path only
        raise TrainingDataError(
            f"no {target!r} labels for {space} in {store}; "
            + (f"labels there: {', '.join(have)}" if have else "import some first")
        )
    archs = table.column("arch").to_pylist()
    keep = [i for i, a in enumerate(archs) if target is None or a in labels]
    if not keep:
        raise TrainingDataError(
            f"none of the {len(archs)} {space} architectures with statistics has a {target!r} label"
        )
    archs = [archs[i] for i in keep]
    # A column that is NULL for every row belongs to another configuration (views union all shards).
    names, cols = [], []
    for c in numeric:
        if c in _NOT_FEATURES:
            continue
        v = table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)[keep]
        if np.isfinite(v).any():
            names.append(c)
            cols.append(v)
    scalars = np.stack(cols, axis=1) if cols else np.zeros((len(archs), 0))
    proxies, slots, nodewise, mask = read_nodewise(sorted({owner[a] for a in archs}), archs, owner)
    y = np.array([labels[a] for a in archs], dtype=np.float64) if target is not None else None
    return TrainingSet(space, chash, archs, proxies, slots, nodewise, mask, names, scalars, target, y)


async def _read_shard(path: str) -> tuple[dict, np.ndarray, np.ndarray]:
    g = await za.open_group(f"{path}/tensors.zarr", mode="r")  # a folder or a URL
    values, mask = await asyncio.gather(g.getitem("values"), g.getitem("mask"))
    v, m = await asyncio.gather(values.getitem(...), mask.getitem(...))
    return dict(g.attrs), np.asarray(v), np.asarray(m)


async def _read_all(paths: list[str]) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    # One event loop over every shard: zarr's per-open latency overlaps instead of adding up.
    return await asyncio.gather(*(_read_shard(p) for p in paths))


def read_nodewise(
    paths: list[str], archs: list[str], owner: dict[str, str] | None = None
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Node-wise tensors of `archs` from the shards at `paths`; `owner` (arch -> path) picks the shard
    an arch is read from where several hold it."""
    # On zarr's own event loop: fsspec caches remote filesystems per loop, so a private loop per call
    # (asyncio.run) would leave the next call holding a filesystem bound to a closed loop.
    blocks = zarr_sync(_read_all(paths))
    if not blocks:
        raise TrainingDataError("the configuration's shards hold no node-wise tensors")
    proxies, slots = list(blocks[0][0]["proxies"]), list(blocks[0][0]["slots"])
    where: dict[str, int] = {}  # arch -> row in the shards' rows stacked in order
    offset = 0
    for b, (attrs, _, _) in enumerate(blocks):
        if list(attrs["proxies"]) != proxies or list(attrs["slots"]) != slots:
            raise TrainingDataError(
                f"shard {paths[b]} has another proxy or slot axis than {paths[0]}; one configuration must share them"
            )
        for r, a in enumerate(attrs["archs"]):
            if owner is None or owner.get(a) == str(paths[b]):
                where[a] = offset + r
        offset += len(attrs["archs"])
    rows = np.fromiter((where[a] for a in archs), dtype=np.int64, count=len(archs))
    if len(blocks) == 1:  # a compacted configuration: no stacked copy
        return proxies, slots, blocks[0][1][rows], blocks[0][2][rows]
    values = np.concatenate([b[1] for b in blocks])[rows]
    mask = np.concatenate([b[2] for b in blocks])[rows]
    return proxies, slots, values, mask
