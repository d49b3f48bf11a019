"""Compaction: many small shards of one configuration rewritten as a few large ones, swapped in atomically.

An ingest writes one shard per chunk (16 architectures by default), so a whole NB201 run leaves about a
thousand shards, and every query opens every file. Compaction keeps the rows the catalog points at
(a --retry-failed recomputation drops the failed row it superseded), writes them through the normal
staging path, and swaps them in with one catalog transaction (`CatalogWriter.replace_shards`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from zcpipe.store.catalog import Catalog
from zcpipe.store.layout import StoreLayout, is_remote
from zcpipe.store.shard_cache import shard_dirs
from zcpipe.store.shards import TensorBlock, read_tensors, write_staged_shard


@dataclass
class CompactionSummary:
    """What a compaction did: configurations merged, shards before and after, architectures moved."""

    groups: int = 0
    shards_before: int = 0
    shards_after: int = 0
    archs: int = 0

    def line(self) -> str:
        return (
            f"compacted {self.groups} configurations: {self.shards_before} shards into {self.shards_after} "
            f"({self.archs} architectures)"
        )


def _read_parquet(layout: StoreLayout, path: str) -> pa.Table:
    """A local copy, or (shard cache off) a URL read through the store's fsspec filesystem."""
    return pq.read_table(path, filesystem=layout.fs if is_remote(path) else None)


def _concat_blocks(blocks: list[TensorBlock], keep: list[np.ndarray]) -> TensorBlock:
    proxies, slots = blocks[0].proxies, blocks[0].slots
    for b in blocks:
        if b.proxies != proxies or b.slots != slots:
            raise ValueError("shards of one configuration disagree on their proxy or slot axes")
    return TensorBlock(
        archs=[a for b, k in zip(blocks, keep, strict=True) for a in np.asarray(b.archs, dtype=object)[k]],
        proxies=proxies,
        slots=slots,
        values=np.concatenate([b.values[k] for b, k in zip(blocks, keep, strict=True)]),
        mask=np.concatenate([b.mask[k] for b, k in zip(blocks, keep, strict=True)]),
    )


SMALL = 1_000  # shards with fewer architectures than this are merged; larger ones are left alone


def compact(store: str, max_archs: int = 100_000, min_shards: int = 2, small: int = SMALL) -> CompactionSummary:
    """Merge the small shards (fewer than `small` architectures) of each (space, configuration) that has
    `min_shards` or more of them into shards of up to `max_archs`. Holds the ingest lock: no ingest runs
    meanwhile. Larger shards are never rewritten, so repeated compactions cost what was added since."""
    catalog = Catalog(store)
    layout = catalog.layout
    summary = CompactionSummary()
    with catalog.ingest_lock():
        with catalog.writer() as w:
            w.reconcile()
        with catalog.reader() as con:
            shards = con.execute(
                "SELECT space, config_hash, shard_id, path FROM shards_t WHERE n_archs < ? "
                "ORDER BY space, config_hash, shard_id",
                [min(small, max_archs)],
            ).fetchall()
            owner = {
                (r[0], r[1], r[2]): r[3]
                for r in con.execute("SELECT space, arch, config_hash, shard_id FROM arch_index").fetchall()
            }
        groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for space, chash, shard_id, rel in shards:
            groups.setdefault((space, chash), []).append((shard_id, rel))
        run_id = "compact-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        for g, ((space, chash), members) in enumerate(groups.items()):
            if len(members) < min_shards:
                continue
            # One run, several groups: each group's shards are named apart (two configurations of one space
            # would otherwise both write `<run>-00000` and the second could not be placed).
            manifests = _rewrite(layout, store, space, chash, members, owner, run_id, f"{run_id}-g{g:03d}", max_archs)
            with catalog.writer() as w:
                w.replace_shards(manifests, [m[0] for m in members])
            summary.groups += 1
            summary.shards_before += len(members)
            summary.shards_after += len(manifests)
            summary.archs += sum(len(m.archs) for m in manifests)
        with catalog.writer() as w:  # after the swap is published: no new reader is sent to these files
            w.purge_retired()  # on object storage after a grace period (old snapshots), by a later call
    return summary


def _rewrite(layout, store, space, chash, members, owner, run_id, prefix, max_archs) -> list:
    arch_tables, layer_tables, blocks, keeps = [], [], [], []
    # A remote store's shards are fetched first, all in one concurrent copy, then read from local disk.
    where = dict(zip([m[1] for m in members], shard_dirs(layout, [m[1] for m in members]), strict=True))
    for shard_id, rel in members:
        archs = _read_parquet(layout, f"{where[rel]}/archs.parquet")
        live = np.array(
            [owner.get((space, a, chash)) == shard_id for a in archs.column("arch").to_pylist()], dtype=bool
        )
        arch_tables.append(archs.filter(pa.array(live)))
        layers = _read_parquet(layout, f"{where[rel]}/layers.parquet")
        live_archs = pa.array([a for a, k in zip(archs.column("arch").to_pylist(), live, strict=True) if k])
        layer_tables.append(layers.filter(pc.is_in(layers.column("arch"), value_set=live_archs)))
        block = read_tensors(where[rel])
        blocks.append(block)
        keeps.append(np.array([owner.get((space, a, chash)) == shard_id for a in block.archs], dtype=bool))
    archs = pa.concat_tables(arch_tables, promote_options="default")
    layers = pa.concat_tables(layer_tables, promote_options="default")
    tensors = _concat_blocks(blocks, keeps)
    order = {a: i for i, a in enumerate(tensors.archs)}
    manifests = []
    for start in range(0, archs.num_rows, max_archs):
        part = archs.slice(start, max_archs)
        names = part.column("arch").to_pylist()
        shard_id = f"{prefix}-{start // max_archs:05d}"
        idx = np.array([order[a] for a in names], dtype=int)
        block = TensorBlock(names, tensors.proxies, tensors.slots, tensors.values[idx], tensors.mask[idx])
        part = part.set_column(part.schema.get_field_index("shard_id"), "shard_id", pa.array([shard_id] * len(names)))
        lay = layers.filter(pc.is_in(layers.column("arch"), value_set=pa.array(names)))
        lay = lay.set_column(lay.schema.get_field_index("shard_id"), "shard_id", pa.array([shard_id] * lay.num_rows))
        manifests.append(
            write_staged_shard(
                store,
                shard_id=shard_id,
                space=space,
                run_id=run_id,
                config_hash=chash,
                arch_rows=part,
                layer_rows=lay,
                proxy_names=[],
                tensors=block,
            )
        )
    return manifests


def small_shards(store: str, space: str, config_hash: str, small: int = SMALL) -> int:
    """How many committed shards of this configuration hold fewer than `small` architectures."""
    with Catalog(store).reader() as con:
        return con.execute(
            "SELECT count(*) FROM shards_t WHERE space = ? AND config_hash = ? AND n_archs < ?",
            [space, config_hash, small],
        ).fetchall()[0][0]
