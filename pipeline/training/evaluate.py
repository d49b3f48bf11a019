"""A saved model on the store's cells: its metrics on the cells it did not train on, and its scores
for every cell (committed to view `predictions`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from zcpipe.pipeline.training.fit import Data, load_data, load_model
from zcpipe.predictors import rank_metrics
from zcpipe.store import Catalog
from zcpipe.store.model_artifacts import ModelError, resolve_model


def _held_out(data: Data, config: dict, space: str) -> Data:
    """Every labeled cell of `data` (one space) that the model did not train on."""
    trained = config["train_archs"]
    if isinstance(trained, list):  # models saved before cross-space training listed one space's cells
        trained = {config["space"]: trained}
    seen = trained.get(space, [])
    if seen == "all":
        return data.subset([])
    seen = set(seen)
    return data.subset([i for i, a in enumerate(data.archs) if a not in seen])


def evaluate(
    store: str, name: str, target: str | None = None, space: str | None = None, data: str | None = None
) -> dict[str, Any]:
    """Rank metrics of a saved model on every labeled cell of `space` it did not train on. With `data`,
    on that dataset's statistics instead of the ones it trained on (another task, asked for); the result
    says which statistics it read."""
    name = resolve_model(store, name)  # `latest`: the store's newest model
    predictor, config = load_model(store, name)
    space = space or config["space"]
    target = target or config["target"]
    cells = _statistics(predictor, store, space, target, config, data)
    test = _held_out(cells, config, space)
    if not len(test):
        raise ModelError(f"model {name!r} trained on every labeled {space} cell: nothing is left to evaluate")
    metrics = rank_metrics(predictor.predict(test).score, test.labels)
    read = getattr(cells, "config_hash", None)
    return {"model": name, "space": space, "target": target, "statistics": read, **metrics, "n_test": metrics["n"]}


def score(
    store: str, name: str, space: str | None = None, data: str | None = None
) -> tuple[str, list[str], np.ndarray, np.ndarray]:
    """(space, archs, score, score_std) of every cell of `space` with statistics under the model's
    configuration (or, asked for, under `data`'s); NaN where a cell cannot be scored. Writes nothing."""
    name = resolve_model(store, name)  # `latest`: the store's newest model
    predictor, config = load_model(store, name)
    space = space or config["space"]
    cells = _statistics(predictor, store, space, None, config, data)
    pred = predictor.predict(cells)
    std = pred.std if pred.std is not None else np.full(len(cells), np.nan)
    return space, list(cells.archs), np.where(np.isfinite(pred.score), pred.score, np.nan), std


def predict(store: str, name: str, space: str | None = None, data: str | None = None) -> int:
    """`score`, committed to `predictions` in one transaction (replacing this model's earlier scores)."""
    name = resolve_model(store, name)  # `latest`: the store's newest model
    space, archs, values, std = score(store, name, space, data)
    with Catalog(store).writer() as w:
        return w.replace_predictions(name, space, archs, values, std)  # NaN stored as NULL


def _statistics(predictor, store: str, space: str, target: str | None, config: dict, data: str | None) -> Data:
    """The cells to score: under the model's own configuration, or under `data`'s (accepted for it)."""
    if data is None or predictor.input_kind == "graphs":  # graph-only models read any task's labels
        # (a cross-space model's hashes are its training spaces'; `space` reads its own only one)
        return load_data(predictor.input_kind, store, [space], target, config["config_hash"])
    cells = load_data(predictor.input_kind, store, [space], target, None, data)
    predictor.accept_statistics_of(cells.config_hash)
    return cells
