"""TG-NAS's pruning search on NB201: start from the supernet (every op on every edge); each round, on
every edge with more than one op left, remove the op whose removal costs the least predicted score,
until one op per edge remains. Candidates are compared by their predicted rank (the public reference
sorts them by key instead)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from zcpipe.pipeline.errors import ConfigError
from zcpipe.pipeline.training.fit import load_model
from zcpipe.store import Catalog, readers
from zcpipe.store.graph_reader import graph_set, graph_table
from zcpipe.workers.spaces import ArchError, get_space


@dataclass
class PruneResult:
    """The chosen cell, the search's wall time, the op each round removed per edge, the cell's labels."""

    arch: str
    seconds: float
    rounds: list[list[str]] = field(default_factory=list)  # per round, the removed op of each edge ("" if none)
    labels: dict[str, float] = field(default_factory=dict)


def prune_search(store: str, name: str, space: str = "nb201") -> PruneResult:
    """Prune the space's supernet with a graph model's predicted ranks down to one op per edge."""
    predictor, _ = load_model(store, name)
    if predictor.input_kind != "graphs":
        raise ConfigError(
            f"the pruning search scores supernet graphs: model {name!r} needs statistics; use a tgnas model"
        )
    cells = get_space(space)
    try:
        edges = cells.supernet_edges()
    except ArchError as e:
        raise ConfigError(f"the pruning search needs a supernet: {e}") from None
    t0 = time.perf_counter()
    rounds = []
    while any(len(ops) > 1 for ops in edges):
        trials = [(k, op) for k, ops in enumerate(edges) if len(ops) > 1 for op in ops]
        graphs = []
        for k, op in trials:
            trial = [list(ops) for ops in edges]
            trial[k].remove(op)
            graphs.append(cells.supernet_graph(trial))
        table = graph_table(
            space, [f"{k}-{op}" for k, op in trials], [g.ops for g in graphs], [g.adjacency for g in graphs]
        )
        rank = stats.rankdata(-predictor.predict(graph_set(table)).score)  # 1: the best supernet after a removal
        removed = [""] * len(edges)
        for k in range(len(edges)):
            mine = [i for i, (edge, _) in enumerate(trials) if edge == k]
            if mine:
                best = mine[int(np.argmin(rank[mine]))]
                removed[k] = trials[best][1]
        for k, op in enumerate(removed):
            if op:
                edges[k].remove(op)
        rounds.append(removed)
    arch = cells.cell_of([ops[0] for ops in edges])
    seconds = time.perf_counter() - t0
    return PruneResult(arch, seconds, rounds, readers.labels_of(Catalog(store), space, arch))
