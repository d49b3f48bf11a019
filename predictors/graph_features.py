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
    """(names, [A, F] float64): per operator its count, and the count on live input-to-output paths; the
    longest and shortest live path (in operators), the number of live paths (log1p), and the mean in- and
    out-degree of the operator nodes. A live path avoids `none`; a cell without one has lengths 0."""
    vocab = list(graphs.vocab)
    kinds = [op for op in vocab if op not in _ENDS]
    rows = [_one(graphs, i, vocab, kinds) for i in range(len(graphs))]
    names = ([f"count:{k}" for k in kinds] + [f"on_path:{k}" for k in kinds]
             + ["longest_path", "shortest_path", "log_paths", "mean_in_degree", "mean_out_degree"])  # fmt: skip
    return names, np.asarray(rows, dtype=np.float64)


def _one(graphs: GraphSet, a: int, vocab: list[str], kinds: list[str]) -> list[float]:
    n = int((graphs.ops[a] >= 0).sum())
    ops = [vocab[k] for k in graphs.ops[a, :n]]
    adj = graphs.adjacency[a, :n, :n]
    live = [op not in DEAD for op in ops]
    # Longest/shortest live path and path counts, by dynamic programming in data-flow (index) order: every
    # edge i -> j has i < j. Sources are the nodes nothing feeds (a cell's inputs), sinks those feeding
    # nothing (its output): a DARTS genotype's graph holds two cells, each with its own.
    sources = [i for i in range(n) if not adj[:, i].any()]
    sinks = [i for i in range(n) if not adj[i, :].any()]
    longest = np.full(n, -np.inf)
    shortest = np.full(n, np.inf)
    paths = np.zeros(n)
    longest[sources] = shortest[sources] = 0.0
    paths[sources] = 1.0
    for j in range(n):
        if j in sources or not live[j]:
            continue
        preds = [i for i in range(j) if adj[i, j] and paths[i] > 0]
        if preds:
            step = 0.0 if ops[j] in _ENDS else 1.0
            longest[j] = max(longest[i] for i in preds) + step
            shortest[j] = min(shortest[i] for i in preds) + step
            paths[j] = sum(paths[i] for i in preds)
    # Which nodes lie on a live source-to-sink path: reached from a source and reaching a sink.
    reaches = np.zeros(n, bool)
    for i in range(n - 1, -1, -1):
        reaches[i] = live[i] and (i in sinks or any(adj[i, j] and reaches[j] for j in range(i + 1, n)))
    on_path = reaches & (paths > 0)
    ends = [j for j in sinks if paths[j] > 0]
    counts = [sum(op == k for op in ops) for k in kinds]
    on = [sum(op == k and on_path[i] for i, op in enumerate(ops)) for k in kinds]
    inner = [i for i, op in enumerate(ops) if op not in _ENDS]
    return [
        *counts,
        *on,
        float(max(longest[j] for j in ends)) if ends else 0.0,
        float(min(shortest[j] for j in ends)) if ends else 0.0,
        float(np.log1p(sum(paths[j] for j in ends))),
        float(adj[:, inner].sum(axis=0).mean()) if inner else 0.0,
        float(adj[inner, :].sum(axis=1).mean()) if inner else 0.0,
    ]
