"""Glue between the spaces' graphs and the store: the catalog rows of architectures' operator graphs
(written by ingest and by label import)."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from zcpipe.store.graph_reader import graph_table
from zcpipe.workers.spaces import SearchSpace


def graph_rows(space: SearchSpace, items: Iterable[tuple[str, str]]) -> pa.Table:
    """Catalog rows of the graphs of (arch key, spec) pairs."""
    archs, ops, adjacency = [], [], []
    for key, spec in items:
        g = space.graph(spec)
        archs.append(key)
        ops.append(list(g.ops))
        adjacency.append(g.adjacency)
    return graph_table(space.name, archs, ops, adjacency)
