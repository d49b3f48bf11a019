"""TG-NAS's pruning search on NB201: start from the supernet (every op on every edge); each round, on
every edge with more than one op left, remove the op whose removal costs the least predicted score,
until one op per edge remains. Candidates are compared by their predicted rank (the public reference
sorts them by key instead)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from zcpipe.pipeline.errors import ConfigError
from zcpipe.pipeline.training.fit import load_model
from zcpipe.store import Catalog, readers
from zcpipe.store.graph_reader import graph_set, graph_table
from zcpipe.store.model_artifacts import resolve_model
from zcpipe.workers.spaces import ArchError, connects, get_space
from zcpipe.workers.spaces.base import DEAD_OPS


@dataclass
class PruneResult:
    """The chosen cell, the search's wall time, the op each round removed per edge, the cell's labels."""

    arch: str
    seconds: float
    rounds: list[list[str]] = field(default_factory=list)  # per round, the removed op of each edge ("" if none)
    labels: dict[str, float] = field(default_factory=dict)


def prune_search(store: str, name: str, space: str = "nb201") -> PruneResult:
    """Prune the space's supernet with a graph model's predicted ranks down to one op per edge."""
    name = resolve_model(store, name)  # `latest`: the store's newest model
    predictor, _ = load_model(store, name)
    if predictor.input_kind != "graphs":
        raise ConfigError(
            f"the pruning search scores supernet graphs, which have no statistics: model {name!r} reads "
            f"{predictor.input_kind}; use a tgnas model without zc_proxies"
        )
    cells = get_space(space)
    try:
        edges = cells.supernet_edges()
    except ArchError as e:
        raise ConfigError(f"the pruning search needs a supernet: {e}") from None
    t0 = time.perf_counter()

    def score(graphs: list) -> np.ndarray:
        keys = [str(i) for i in range(len(graphs))]
        table = graph_table(space, keys, [g.ops for g in graphs], [g.adjacency for g in graphs])
        return predictor.predict(graph_set(table)).score

    edges, rounds = prune_edges(cells, edges, score)
    arch = cells.cell_of([ops[0] for ops in edges])
    seconds = time.perf_counter() - t0
    return PruneResult(arch, seconds, rounds, readers.labels_of(Catalog(store), space, arch))


def prune_edges(cells, edges: list[list[str]], score: Callable[[list], np.ndarray]) -> tuple[list[list[str]], list]:
    """Prune a supernet's `edges` (candidate ops per edge) to one op each: each round, on every edge with more
    than one op, remove the op whose removal leaves the supernet `score` ranks best (`score` takes the
    trial supernets' graphs). Returns the final edges and, per round, the op removed on each edge."""
    edges = [list(ops) for ops in edges]
    rounds = []
    while any(len(ops) > 1 for ops in edges):
        trials = [(k, op) for k, ops in enumerate(edges) if len(ops) > 1 for op in ops]
        graphs = [cells.supernet_graph([[o for o in ops if (k, o) != trial] for k, ops in enumerate(edges)])
                  for trial in trials]  # fmt: skip
        rank = stats.rankdata(-np.asarray(score(graphs)))  # 1: the best supernet after a removal
        removed = _removals(cells, edges, trials, rank)
        for k, op in enumerate(removed):
            if op:
                edges[k].remove(op)
        rounds.append(removed)
    return edges, rounds


def _removals(cells, edges: list[list[str]], trials: list[tuple[int, str]], rank: np.ndarray) -> list[str]:
    """Per edge, the op whose removal the model minds least, so long as the supernet still connects input
    to output: a cell whose output does not depend on its input (all `none` on every path) is never the
    result, however a model scores it. (TG-NAS models trained on NB101 and DARTS never saw `none`, which
    neither space has, so their scores of it mean nothing.) Removing `none` never disconnects, so an edge
    whose first choice would disconnect takes its next-best choice, and a connected round always exists."""
    choices = {k: sorted((i for i, (edge, _) in enumerate(trials) if edge == k), key=lambda i: rank[i])
               for k in range(len(edges))}  # fmt: skip
    pick = {k: 0 for k, mine in choices.items() if mine}
    while True:
        removed = [trials[choices[k][pick[k]]][1] if k in pick else "" for k in range(len(edges))]
        after = [[op for op in ops if op != removed[k]] for k, ops in enumerate(edges)]
        if connects(cells.supernet_graph(after)):
            return removed
        # Move on, on the edges whose choice took their last live op; which edge first: the best-ranked next.
        culprits = [k for k in pick if all(op in DEAD_OPS for op in after[k]) and pick[k] + 1 < len(choices[k])]
        if not culprits:
            raise RuntimeError("no connected supernet is left to prune to")  # unreachable: `none` stays removable
        k = min(culprits, key=lambda k: rank[choices[k][pick[k] + 1]])
        pick[k] += 1
