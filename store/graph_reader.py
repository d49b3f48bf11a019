"""Operator graphs of architectures, as TG-NAS reads them: kept in the catalog (`graphs_t`, view `graphs`),
one row per (space, arch) with node operator names and the edge list; read back as padded arrays.

The arrays are built column-wise from Arrow list columns, so 423k NB101 graphs load without a Python
object per graph.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from zcpipe.store.catalog import Catalog
from zcpipe.store.read_errors import TrainingDataError

GRAPH_SCHEMA = pa.schema(
    [
        ("space", pa.string()),
        ("arch", pa.string()),
        ("ops", pa.list_(pa.string())),
        ("src", pa.list_(pa.int16())),
        ("dst", pa.list_(pa.int16())),
    ]
)


def graph_table(space: str, archs: list[str], ops: list[list[str]], adjacency: list[np.ndarray]) -> pa.Table:
    """Rows for `CatalogWriter.add_graphs` from node op names and 0/1 adjacency matrices (edge i -> j)."""
    src, dst = [], []
    for adj in adjacency:
        i, j = np.nonzero(np.asarray(adj))
        src.append(i.astype(np.int16))
        dst.append(j.astype(np.int16))
    return pa.table(
        {"space": [space] * len(archs), "arch": archs, "ops": ops, "src": src, "dst": dst}, schema=GRAPH_SCHEMA
    )


@dataclass(frozen=True)
class GraphSet:
    """A graphs of A architectures (any mix of spaces), padded to N nodes."""

    spaces: np.ndarray  # [A] space name of each architecture
    archs: list[str]
    vocab: list[str]  # operator names; `ops` indexes into it
    ops: np.ndarray  # [A, N] int32, -1 where the graph has fewer nodes
    adjacency: np.ndarray  # [A, N, N] bool, [a, i, j]: edge i -> j
    labels: np.ndarray | None = None  # [A] float64, the target's mean over its rows
    target: str | None = None
    node_stats: np.ndarray | None = None  # [A, N, P]: per node statistics (ZC-GCN); NaN where a node has none
    stat_names: tuple[str, ...] = ()
    arch_stats: np.ndarray | None = None  # [A, Q]: whole-network statistics beside the graph (ZC-GCN)
    arch_stat_names: tuple[str, ...] = ()
    config_hash: str | None = None  # the statistics' configuration, where they are attached

    def __len__(self) -> int:
        return len(self.archs)

    @property
    def n_nodes(self) -> np.ndarray:
        return (self.ops >= 0).sum(axis=1)

    def subset(self, index: np.ndarray | list[int]) -> GraphSet:
        idx = np.asarray(index, dtype=int)

        def pick(a):
            return None if a is None else a[idx]

        return replace(
            self,
            spaces=self.spaces[idx],
            archs=[self.archs[i] for i in idx],
            ops=self.ops[idx],
            adjacency=self.adjacency[idx],
            labels=pick(self.labels),
            node_stats=pick(self.node_stats),
            arch_stats=pick(self.arch_stats),
        )

    def with_stats(
        self,
        config_hash: str,
        node_stats: np.ndarray | None,
        names: list[str],
        arch_stats: np.ndarray,
        arch_names: list[str],
    ) -> GraphSet:
        return replace(
            self,
            config_hash=config_hash,
            node_stats=node_stats,
            stat_names=tuple(names),
            arch_stats=arch_stats,
            arch_stat_names=tuple(arch_names),
        )


def _padded(table: pa.Table) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(vocab, ops [A, N], adjacency [A, N, N]) from the list columns, without a loop over rows."""
    a = table.num_rows
    ops_col = table.column("ops").combine_chunks()
    lengths = pc.list_value_length(ops_col).to_numpy(zero_copy_only=False).astype(np.int64)
    n = int(lengths.max()) if a else 0
    encoded = pc.dictionary_encode(ops_col.flatten())
    vocab = encoded.dictionary.to_pylist()
    order = np.argsort(vocab)  # ids by sorted name: the same vocabulary gives the same ids
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    ids = rank[encoded.indices.to_numpy(zero_copy_only=False)]
    row = np.repeat(np.arange(a), lengths)
    pos = np.arange(len(row)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    ops = np.full((a, n), -1, dtype=np.int32)
    ops[row, pos] = ids
    adjacency = np.zeros((a, n, n), dtype=bool)
    src_col, dst_col = table.column("src").combine_chunks(), table.column("dst").combine_chunks()
    edges = pc.list_value_length(src_col).to_numpy(zero_copy_only=False).astype(np.int64)
    erow = np.repeat(np.arange(a), edges)
    adjacency[erow, src_col.flatten().to_numpy(), dst_col.flatten().to_numpy()] = True
    return sorted(vocab), ops, adjacency


def load_graph_set(
    store: str | Path, spaces: list[str], *, target: str | None = None, archs: dict[str, list[str]] | None = None
) -> GraphSet:
    """Graphs of `spaces` (with a `target` label where one is named; only `archs[space]` where given),
    sorted by (space, arch)."""
    catalog = Catalog(store)
    parts = []
    with catalog.reader() as con:
        for space in spaces:
            have = con.execute("SELECT count(*) FROM graphs_t WHERE space = ?", [space]).fetchall()[0][0]
            if not have:
                raise TrainingDataError(
                    f"store {store} has no {space} graphs; a label import (or an ingest) records the graph of "
                    "every architecture it names"
                )
            if target is None:
                sql = "SELECT space, arch, ops, src, dst, NULL::DOUBLE AS label FROM graphs_t WHERE space = ?"
            else:
                sql = (
                    "SELECT g.space, g.arch, g.ops, g.src, g.dst, l.label FROM graphs_t g JOIN "
                    "(SELECT space, arch, avg(value) AS label FROM labels_t WHERE space = ? AND label = ? "
                    "GROUP BY ALL) l USING (space, arch)"
                )
            params = [space] if target is None else [space, target]
            part = con.sql(sql + " ORDER BY arch", params=params).to_arrow_table()
            if archs is not None and space in archs:
                part = part.filter(pc.is_in(part.column("arch"), pa.array(archs[space], pa.string())))
            if target is not None and not part.num_rows:
                have_labels = [
                    r[0]
                    for r in con.execute(
                        "SELECT DISTINCT label FROM labels_t WHERE space = ? ORDER BY 1", [space]
                    ).fetchall()
                ]
                raise TrainingDataError(
                    f"no {target!r} labels for {space} graphs in {store}; "
                    + (f"labels there: {', '.join(have_labels)}" if have_labels else "import some first")
                )
            parts.append(part)
    return graph_set(pa.concat_tables(parts), target)


def graph_set(table: pa.Table, target: str | None = None) -> GraphSet:
    """A GraphSet from graph rows (GRAPH_SCHEMA, plus `label` where `target` is named)."""
    vocab, ops, adjacency = _padded(table)
    labels = table.column("label").to_numpy(zero_copy_only=False).astype(np.float64) if target else None
    return GraphSet(
        spaces=np.asarray(table.column("space").to_pylist(), dtype=object),
        archs=table.column("arch").to_pylist(),
        vocab=vocab,
        ops=ops,
        adjacency=adjacency,
        labels=labels,
        target=target,
    )
