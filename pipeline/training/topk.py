"""The top-k: a saved model's best-scored cells of a space, with every label known for them."""

from __future__ import annotations

from typing import Any

from zcpipe.pipeline.errors import ConfigError
from zcpipe.pipeline.training.evaluate import predict
from zcpipe.store import Catalog, readers
from zcpipe.store.model_artifacts import model_dir


def top_k(store: str, name: str, k: int = 10, space: str | None = None) -> list[dict[str, Any]]:
    """The model's k best cells of the space (scoring them first if it has not), with every label known."""
    _, config = model_dir(store, name)
    space = space or config["space"]
    if k < 1:
        raise ConfigError(f"`top_k` must be at least 1, got {k}", options=["top_k"])
    catalog = Catalog(store)
    if not readers.predictions(catalog, space, name).num_rows:
        predict(store, name, space)
    top = readers.top_predictions(catalog, name, space, k)
    known: dict[str, dict[str, float]] = {}
    for row in readers.labels(catalog, space, [r["arch"] for r in top]).to_pylist():
        known.setdefault(row["arch"], {})[row["label"]] = row["value"]
    return [{**r, **known.get(r["arch"], {})} for r in top]
