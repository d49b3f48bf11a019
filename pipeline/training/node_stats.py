"""ZC-GCN's input: per-node statistics gathered from the slot axis through each space's node -> slot map."""

from __future__ import annotations

import numpy as np

from zcpipe.store.graph_reader import GraphSet
from zcpipe.store.tensor_reader import TrainingSet
from zcpipe.workers.spaces import get_space


def attach_node_stats(graphs: GraphSet, stats: TrainingSet, specs: dict[str, str] | None = None) -> GraphSet:
    """`graphs` (one space, the archs of `stats` in the same order) with each node's statistics: per proxy the
    sum over the node's slots (its layers in every stacked cell), NaN where the node has no layers; and the
    whole-network statistics for the global node."""
    if list(graphs.archs) != list(stats.archs):
        raise ValueError("graphs and statistics must list the same architectures in the same order")
    space = get_space(stats.space)
    slot_index = {s: i for i, s in enumerate(stats.slots)}
    a, n = graphs.ops.shape
    values = np.nan_to_num(stats.nodewise, nan=0.0)  # absent slots add nothing
    node_stats = np.full((a, n, len(stats.proxies)), np.nan)
    for i, arch in enumerate(stats.archs):
        for k, slots in enumerate(space.node_slots((specs or {}).get(arch, arch))):
            cols = [slot_index[s] for s in slots if s in slot_index and stats.mask[i, slot_index[s]]]
            if cols:
                node_stats[i, k] = values[i][:, cols].sum(axis=1)
    return graphs.with_stats(stats.config_hash, node_stats, stats.proxies, stats.scalars, stats.scalar_names)
