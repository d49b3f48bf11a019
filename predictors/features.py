"""Turning stored statistics into model inputs. Missing values become 0 only beside a mask channel."""

from __future__ import annotations

import numpy as np

from zcpipe.predictors.graph_features import graph_features
from zcpipe.store.tensor_reader import TrainingDataError, TrainingSet

TRANSFORMS = ("none", "log")
ALIGNMENTS = ("slot", "position")


def _signed_log(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.log1p(np.abs(v))


def require_proxies(data: TrainingSet, proxies: list[str]) -> None:
    """TrainingDataError, saying what there is, unless `data` holds every one of `proxies` node-wise."""
    missing = [p for p in proxies if p not in data.proxies]
    if missing:
        raise TrainingDataError(
            f"node-wise proxies {', '.join(missing)} are not in this configuration's tensors; it has: "
            f"{', '.join(data.proxies)} (choose them with the predictor option proxies=a,b,c, or ingest `proxies`)",
            options=["proxies"],
        )


def nodewise_input(data: TrainingSet, proxies: list[str], transform: str = "none", align: str = "slot") -> np.ndarray:
    """[A, P+1, S] float32: for each proxy, its node vector min-max normalised within each architecture
    over the slots the architecture has (ParZC's encoding); then a mask channel, 1 where the slot is
    present and every chosen proxy has a value there. Absent or missing entries are 0 in the proxy
    channels. `transform="log"` takes a signed log first (synflow spans 1e0..1e50 inside one network).
    `align="position"` packs each architecture's layers to the front in depth-first order, as the
    public ParZC code pads them: column i is then "the i-th layer", whatever layer that is."""
    if align not in ALIGNMENTS:
        raise ValueError(f"align {align!r}: choose one of {', '.join(ALIGNMENTS)}")
    if transform not in TRANSFORMS:
        raise ValueError(f"transform {transform!r}: choose one of {', '.join(TRANSFORMS)}")
    require_proxies(data, proxies)
    values = data.nodewise[:, [data.proxies.index(p) for p in proxies], :]
    if transform == "log":
        values = _signed_log(values)
    valid = data.mask & np.isfinite(values).all(axis=1)  # [A, S]
    v = np.where(valid[:, None, :], values, np.nan)
    lo = np.nanmin(np.where(valid[:, None, :], v, np.inf), axis=2, keepdims=True)
    hi = np.nanmax(np.where(valid[:, None, :], v, -np.inf), axis=2, keepdims=True)
    span = hi - lo
    # A proxy constant over an architecture's layers carries no profile: it encodes as 0.
    norm = np.where(span > 0, (v - lo) / np.where(span > 0, span, 1.0), 0.0)
    norm = np.where(valid[:, None, :], norm, 0.0)
    out = np.concatenate([norm, valid[:, None, :].astype(np.float64)], axis=1).astype(np.float32)
    if align == "position":
        # a stable sort of "absent" puts each architecture's present slots first, in slot order
        order = np.argsort(~data.mask, axis=1, kind="stable")
        out = np.take_along_axis(out, order[:, None, :], axis=2)
    return out


def scalar_input(data: TrainingSet, names: list[str]) -> np.ndarray:
    """[A, Q] float64 of whole-network values on a signed log scale (monotone; NaN kept for trees)."""
    return _signed_log(np.stack([data.scalar(n) for n in names], axis=1))


def aligned(names: list[str], matrix: np.ndarray, columns: list[str]) -> np.ndarray:
    """`matrix`'s columns in the order of `columns` (those a model was fitted on); 0 where `names` lacks one
    (a space with fewer operator kinds has no count of the missing ones: zero of them)."""
    if names == columns:
        return matrix
    where = {n: i for i, n in enumerate(names)}
    out = np.zeros((len(matrix), len(columns)), dtype=matrix.dtype)
    for j, n in enumerate(columns):
        if n in where:
            out[:, j] = matrix[:, where[n]]
    return out


def graph_input(data: TrainingSet, columns: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """(names, [A, F] float64): the graph features (predictors/graph_features.py) of `data`'s cells, in the
    order of `columns` where given."""
    if data.graphs is None:
        raise TrainingDataError(
            "graph features need the cells' operator graphs beside the statistics: load them with input kind "
            "statistics+graphs (the training stage does so for a predictor with graph features)"
        )
    names, matrix = graph_features(data.graphs)
    return (names, matrix) if columns is None else (columns, aligned(names, matrix, columns))


class GraphScaler:
    """Graph features standardised with the training cells' mean and spread, for the neural predictors;
    `state`/`from_state` keep it with the model."""

    def __init__(self, columns: list[str], mean: list[float], std: list[float]):
        self.columns, self.mean, self.std = columns, np.asarray(mean), np.asarray(std)

    @classmethod
    def fit(cls, train: TrainingSet) -> GraphScaler:
        names, m = graph_input(train)
        return cls(names, m.mean(axis=0).tolist(), np.maximum(m.std(axis=0), 1e-8).tolist())

    def transform(self, data: TrainingSet) -> np.ndarray:
        """[A, F] float32; a feature constant on the training cells is 0."""
        return ((graph_input(data, self.columns)[1] - self.mean) / self.std).astype(np.float32)

    def state(self) -> dict:
        return {"columns": self.columns, "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> GraphScaler:
        return cls(list(state["columns"]), state["mean"], state["std"])


def as_tokens(values: np.ndarray, channels: int, width: int) -> np.ndarray:
    """[A, channels, k·width] float32: the F values of each architecture laid over the proxy channels of k
    extra tokens of `width` slots (token by token, channel by channel), the last (mask) channel 1 at the
    slots that hold a value: the node-wise input's layout, so the Mixer and the MLP read them as more slots."""
    a, f = values.shape
    per_token = (channels - 1) * width
    k = max(1, -(-f // per_token))
    flat = np.zeros((a, k * per_token), np.float32)
    flat[:, :f] = values
    used = np.zeros(k * per_token, bool)
    used[:f] = True
    out = np.zeros((a, channels, k * width), np.float32)
    out[:, :-1] = flat.reshape(a, k, channels - 1, width).transpose(0, 2, 1, 3).reshape(a, channels - 1, k * width)
    out[:, -1] = used.reshape(k, channels - 1, width).any(axis=1).reshape(-1)
    return out
