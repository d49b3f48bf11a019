"""Features of an architecture read off its operator graph alone, for every space alike (GRAF-like, Kadlecová
et al. 2024): which operators it has, how its input reaches its output, and a one-hot encoding.

Computed from the cell graph the store keeps (`store.graph_reader.GraphSet`: nodes are operators, the
first node the input, the last the output), never from a table of names, so NB201, NB101 and the DARTS-like
spaces get the same features.
"""

from __future__ import annotations

import numpy as np

from zcpipe.store.graph_reader import GraphSet

# Operators that pass nothing on (NB201's `none`): a path through them carries no signal.
DEAD = frozenset({"none", "zero"})
_ENDS = frozenset({"input", "output", "input_prev", "input_prev_prev"})


def onehot(graphs: GraphSet) -> tuple[list[str], np.ndarray]:
    """(names, [A, N*V + N*N] float32): each node's operator one-hot, then the adjacency matrix, flattened."""
    a, n = graphs.ops.shape
    v = len(graphs.vocab)
    ops = np.zeros((a, n, v), np.float32)
    rows, cols = np.nonzero(graphs.ops >= 0)
    ops[rows, cols, graphs.ops[rows, cols]] = 1.0
    names = [f"node{i}={op}" for i in range(n) for op in graphs.vocab]
    names += [f"edge{i}->{j}" for i in range(n) for j in range(n)]
    return names, np.concatenate([ops.reshape(a, -1), graphs.adjacency.reshape(a, -1).astype(np.float32)], axis=1)


def graph_features(graphs: GraphSet) -> tuple[list[str], np.ndarray]:
    """(names, [A, F] float64), read off each operator graph:

    - per operator kind: its count, its count on live input-to-output paths, and its count at depth 1, 2
      and 3 or more (operators from the input along the longest path): where in the cell it sits;
    - for all live operators (the plain names) and for each restriction of them (`only:k`, paths through
      operators of kind k alone; `no:k`, through any live kind but k): the longest and shortest input-to-
      output path in operators, the number of such paths (log1p), and how many operators on them feed the
      output and read the input (the output's in-degree and the input's out-degree);
    - the mean in- and out-degree of the operator nodes;
    - where every graph holds the same number of separate cells (a DARTS genotype: its normal and its
      reduction cell), all of the above for each cell alone as well (`cell0:`, `cell1:`, in node order), as
      GRAF computes DARTS features per cell type: the merged counts cannot tell an operator in the six
      normal cells of the network from one in its two reduction cells.

    A live path avoids `none`; where no path is allowed its lengths and degrees are 0. The restrictions
    follow GRAF's features over subsets of allowed operations (singletons and all-but-one here, so a
    space's feature count grows linearly with its operator kinds, not as 2^K)."""
    vocab = list(graphs.vocab)
    kinds = [op for op in vocab if op not in _ENDS]
    live = [k for k in kinds if k not in DEAD]
    subsets: list[tuple[str, frozenset[str]]] = [("", frozenset(live))]
    subsets += [(f"only:{k}:", frozenset({k})) for k in live]
    if len(live) > 2:  # with two kinds, all-but-one is the other singleton
        subsets += [(f"no:{k}:", frozenset(live) - {k}) for k in live]
    graphs_of = [_graph(graphs, i, vocab) for i in range(len(graphs))]
    parts = [_components(adj) for _, adj in graphs_of]
    per_cell = len({len(p) for p in parts}) == 1 and len(parts[0]) > 1 if parts else False
    rows = []
    for (ops, adj), cells in zip(graphs_of, parts, strict=True):
        row = _one(ops, adj, kinds, subsets)
        if per_cell:
            for nodes in cells:
                row += _one([ops[i] for i in nodes], adj[np.ix_(nodes, nodes)], kinds, subsets)
        rows.append(row)
    names = [f"count:{k}" for k in kinds] + [f"on_path:{k}" for k in kinds]
    names += [f"count:{k}@depth{d}" for k in kinds for d in ("1", "2", "3+")]
    for prefix, _ in subsets:
        names += [f"{prefix}{f}" for f in _PATH_FEATURES]
    names += ["mean_in_degree", "mean_out_degree"]
    if per_cell:
        names += [f"cell{c}:{name}" for c in range(len(parts[0])) for name in names]
    return names, np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))


_PATH_FEATURES = ("longest_path", "shortest_path", "log_paths", "output_in_degree", "input_out_degree")


def _graph(graphs: GraphSet, a: int, vocab: list[str]) -> tuple[list[str], np.ndarray]:
    """(operator names, adjacency) of architecture `a`, without the padding."""
    n = int((graphs.ops[a] >= 0).sum())
    return [vocab[k] for k in graphs.ops[a, :n]], graphs.adjacency[a, :n, :n]


def _components(adj: np.ndarray) -> list[list[int]]:
    """The weakly connected parts of a graph (its separate cells), each as sorted node indices, ordered by
    their first node."""
    n = len(adj)
    linked = (adj != 0) | (adj != 0).T
    seen, parts = np.zeros(n, bool), []
    for start in range(n):
        if seen[start]:
            continue
        seen[start], todo, part = True, [start], []
        while todo:
            i = todo.pop()
            part.append(i)
            for j in np.flatnonzero(linked[i] & ~seen):
                seen[j] = True
                todo.append(int(j))
        parts.append(sorted(part))
    return parts


def _one(ops: list[str], adj: np.ndarray, kinds: list[str], subsets) -> list[float]:
    n = len(ops)
    # Sources are the nodes nothing feeds (a cell's inputs), sinks those feeding nothing (its output): a
    # DARTS genotype's graph holds two cells, each with its own.
    sources = [i for i in range(n) if not adj[:, i].any()]
    sinks = [i for i in range(n) if not adj[i, :].any()]
    counts = [sum(op == k for op in ops) for k in kinds]
    _, _, _, on_path = _paths(adj, [op not in DEAD for op in ops], ops, sources, sinks)
    on = [sum(op == k and on_path[i] for i, op in enumerate(ops)) for k in kinds]
    depth = _depth(adj, ops, sources)
    by_depth = [sum(op == k and min(depth[i], 3) == d for i, op in enumerate(ops)) for k in kinds for d in (1, 2, 3)]
    per_subset: list[float] = []
    for _, allowed in subsets:
        usable = [op in allowed or op in _ENDS for op in ops]
        longest, shortest, paths, on_path = _paths(adj, usable, ops, sources, sinks)
        ends = [j for j in sinks if paths[j] > 0]
        inner_on = [i for i in range(n) if on_path[i] and ops[i] not in _ENDS]
        per_subset += [
            float(max(longest[j] for j in ends)) if ends else 0.0,
            float(min(shortest[j] for j in ends)) if ends else 0.0,
            float(np.log1p(sum(paths[j] for j in ends))),
            float(sum(adj[i, j] for i in inner_on for j in sinks)),
            float(sum(adj[i, j] for i in sources for j in inner_on)),
        ]
    inner = [i for i, op in enumerate(ops) if op not in _ENDS]
    return [
        *counts,
        *on,
        *by_depth,
        *per_subset,
        float(adj[:, inner].sum(axis=0).mean()) if inner else 0.0,
        float(adj[inner, :].sum(axis=1).mean()) if inner else 0.0,
    ]


def _paths(adj: np.ndarray, usable: list[bool], ops: list[str], sources: list[int], sinks: list[int]):
    """(longest, shortest, paths, on_path) per node over paths from a source through usable nodes only, by
    dynamic programming in data-flow (index) order: every edge i -> j has i < j. Lengths count operators,
    not the cell's input and output nodes; on_path marks the nodes on a source-to-sink path."""
    n = len(ops)
    longest = np.full(n, -np.inf)
    shortest = np.full(n, np.inf)
    paths = np.zeros(n)
    longest[sources] = shortest[sources] = 0.0
    paths[sources] = 1.0
    for j in range(n):
        if j in sources or not usable[j]:
            continue
        preds = [i for i in range(j) if adj[i, j] and paths[i] > 0]
        if preds:
            step = 0.0 if ops[j] in _ENDS else 1.0
            longest[j] = max(longest[i] for i in preds) + step
            shortest[j] = min(shortest[i] for i in preds) + step
            paths[j] = sum(paths[i] for i in preds)
    reaches = np.zeros(n, bool)  # usable and reaching a sink through usable nodes
    for i in range(n - 1, -1, -1):
        reaches[i] = usable[i] and (i in sinks or any(adj[i, j] and reaches[j] for j in range(i + 1, n)))
    return longest, shortest, paths, reaches & (paths > 0)


def _depth(adj: np.ndarray, ops: list[str], sources: list[int]) -> np.ndarray:
    """Each node's depth: operators on the longest path to it from a source, itself included."""
    n = len(ops)
    depth = np.zeros(n)
    for j in range(n):
        preds = [i for i in range(j) if adj[i, j]]
        if j not in sources and preds:
            depth[j] = max(depth[i] for i in preds) + (0.0 if ops[j] in _ENDS else 1.0)
    return depth
