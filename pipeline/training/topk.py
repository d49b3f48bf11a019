"""The top-k: a saved model's best-scored cells of a space, with every label known for them."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from zcpipe.errors import InputError
from zcpipe.pipeline.errors import ConfigError
from zcpipe.pipeline.training.evaluate import score
from zcpipe.store import Catalog, readers
from zcpipe.store.model_artifacts import model_dir, resolve_model
from zcpipe.workers.spaces import connects, get_space
from zcpipe.workers.spaces.base import DEAD_OPS


def top_k(store: str, name: str, k: int = 10, space: str | None = None) -> list[dict[str, Any]]:
    """The model's k best cells of the space (scoring them first if it has not), with every label known."""
    name = resolve_model(store, name)  # `latest`: the store's newest model
    _, config = model_dir(store, name)
    space = space or config["space"]
    if k < 1:
        raise ConfigError(f"`top_k` must be at least 1, got {k}", options=["top_k"])
    catalog = Catalog(store)
    stored = readers.predictions(catalog, space, name)
    if stored.num_rows:
        archs = stored.column("arch").to_pylist()
        values = np.array(stored.column("score").to_pylist(), dtype=float)  # NULL -> NaN
        std = np.array(stored.column("score_std").to_pylist(), dtype=float)
    else:  # scored here, in memory: a search reads the store and writes nothing (a read-only store works)
        _, archs, values, std = score(store, name, space)
    top = _ranked(archs, values, std, k, _connected(space))
    known: dict[str, dict[str, float]] = {}
    for row in readers.labels(catalog, space, [r["arch"] for r in top]).to_pylist():
        known.setdefault(row["arch"], {})[row["label"]] = row["value"]
    return [{**r, **known.get(r["arch"], {})} for r in top]


def _connected(space: str) -> Callable[[str], bool]:
    """Whether a cell's output depends on its input: a cell with no live path is never a search's answer.
    Only a cell holding a `none` op can lack one (NB101's and the DARTS-like spaces' cells have none)."""
    try:
        cells = get_space(space)
    except InputError:  # a zero-shot model's joined training spaces: nothing to score there
        return lambda arch: True

    def keep(arch: str) -> bool:
        try:
            graph = cells.graph(arch)
        except InputError:  # NB101's keys are hashes; its cells always connect
            return True
        return not DEAD_OPS & set(graph.ops) or connects(graph)

    return keep


def _ranked(archs: list[str], values, std, k: int, keep: Callable[[str], bool]) -> list[dict[str, Any]]:
    """The k best cells that `keep` accepts: score descending, NaN last, ties by arch; rank as SQL's rank()."""
    order = sorted(range(len(archs)), key=lambda i: (math.isnan(values[i]), -values[i], archs[i]))
    order = [i for i in _first(order, k, lambda i: keep(archs[i]))]
    out, rank = [], 0
    for pos, i in enumerate(order[:k]):
        before = values[order[pos - 1]] if pos else None
        if pos == 0 or not (before == values[i] or (math.isnan(before) and math.isnan(values[i]))):
            rank = pos + 1
        clean = [None if math.isnan(v) else float(v) for v in (values[i], std[i])]
        out.append({"rank": rank, "arch": archs[i], "score": clean[0], "score_std": clean[1]})
    return out


def _first(items: list[int], k: int, keep: Callable[[int], bool]) -> Iterator[int]:
    """The first k items that `keep` accepts (checking no more than needed)."""
    n = 0
    for i in items:
        if n == k:
            return
        if keep(i):
            n += 1
            yield i
