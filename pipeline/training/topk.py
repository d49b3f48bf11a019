"""The top-k: a saved model's best-scored cells of a space, with every label known for them."""

from __future__ import annotations

import math
from typing import Any

from zcpipe.pipeline.errors import ConfigError
from zcpipe.pipeline.training.evaluate import score
from zcpipe.store import Catalog, readers
from zcpipe.store.model_artifacts import model_dir


def top_k(store: str, name: str, k: int = 10, space: str | None = None) -> list[dict[str, Any]]:
    """The model's k best cells of the space (scoring them first if it has not), with every label known."""
    _, config = model_dir(store, name)
    space = space or config["space"]
    if k < 1:
        raise ConfigError(f"`top_k` must be at least 1, got {k}", options=["top_k"])
    catalog = Catalog(store)
    if readers.predictions(catalog, space, name).num_rows:
        top = readers.top_predictions(catalog, name, space, k)
    else:  # scored here, in memory: a search reads the store and writes nothing (a read-only store works)
        top = _ranked(*score(store, name, space)[1:], k)
    known: dict[str, dict[str, float]] = {}
    for row in readers.labels(catalog, space, [r["arch"] for r in top]).to_pylist():
        known.setdefault(row["arch"], {})[row["label"]] = row["value"]
    return [{**r, **known.get(r["arch"], {})} for r in top]


def _ranked(archs: list[str], values, std, k: int) -> list[dict[str, Any]]:
    """As `readers.top_predictions` ranks stored scores: score descending, NaN last, ties by arch, rank()."""
    order = sorted(range(len(archs)), key=lambda i: (math.isnan(values[i]), -values[i], archs[i]))
    out, rank = [], 0
    for pos, i in enumerate(order[:k]):
        before = values[order[pos - 1]] if pos else None
        if pos == 0 or not (before == values[i] or (math.isnan(before) and math.isnan(values[i]))):
            rank = pos + 1
        clean = [None if math.isnan(v) else float(v) for v in (values[i], std[i])]
        out.append({"rank": rank, "arch": archs[i], "score": clean[0], "score_std": clean[1]})
    return out
