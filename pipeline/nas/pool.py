"""The cells a NAS loop may query: every cell of the space with statistics and the target label in the store
(all of it once the store holds the whole space; otherwise the loop is restricted to the stored cells and
says so), with what a query returns (the validation label, and the test label of the chosen cell) and the
free side information (features) a model-based loop reads.

A *query* stands for training a network: it reads the benchmark's label from the store (a simulated NAS run
on tabular data, as NASLib does). Features are free: they come from the store (and cost, in seconds, what
the ingest spent computing the proxies, which a run reports).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zcpipe.pipeline.errors import ConfigError
from zcpipe.predictors.graph_features import graph_features, onehot
from zcpipe.store import Catalog, readers
from zcpipe.store.graph_reader import load_graph_set
from zcpipe.store.tensor_reader import TrainingDataError, load_training_set
from zcpipe.workers.spaces import ArchError, get_space

FEATURE_SETS = ("onehot", "zc", "graph", "nodewise")
# The test label reported for the cell a run chooses by its validation label, where the benchmark has one.
TEST_OF = {"cifar10_valid": "cifar10_test"}
# Counts, not zero-cost scores: no part of the zero-shot vote.
_NOT_ZC = ("params", "flops")


@dataclass
class Pool:
    """N cells of one space: their labels, feature blocks and zero-cost scores, and a neighbourhood."""

    space: str
    target: str
    archs: list[str]
    valid: np.ndarray  # [N] the target label: what a query returns
    test: np.ndarray  # [N] the test label of TEST_OF[target] (the target itself where there is none)
    test_label: str
    features: dict[str, np.ndarray]  # feature set -> [N, F]
    zc: dict[str, np.ndarray]  # proxy -> [N] whole-network value (NaN where NULL)
    proxy_seconds: np.ndarray  # [N] what the ingest spent on each cell's statistics
    space_size: int | None  # cells in the whole space, where it is finite
    code: np.ndarray = field(repr=False, default=None)  # [N, B] one-hot encoding: neighbours by Hamming distance
    _near: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    touched: set[int] = field(default_factory=set, repr=False)  # cells whose statistics a run read
    _scores: dict[str | None, np.ndarray] = field(default_factory=dict, repr=False)

    def touch(self, cells) -> None:
        """Note that a run read these cells' statistics (their proxies' cost counts against it)."""
        self.touched.update(int(i) for i in np.ravel(cells))

    def proxy_cost(self) -> float:
        """Seconds the ingest spent on the statistics of the touched cells."""
        return float(self.proxy_seconds[sorted(self.touched)].sum()) if self.touched else 0.0

    def __len__(self) -> int:
        return len(self.archs)

    @property
    def restricted(self) -> bool:
        return self.space_size is None or len(self) < self.space_size

    def neighbours(self, i: int) -> np.ndarray:
        """Cells one change away (one edge's op, one input): on the whole space, exactly those; on a partial
        store, the nearest stored cells (the smallest positive Hamming distance, at least one change)."""
        if i not in self._near:
            d = np.abs(self.code - self.code[i]).sum(axis=1).astype(np.float64)
            d[i] = np.inf
            near = max(2.0, float(d.min()))
            self._near[i] = np.flatnonzero(d <= near)
        return self._near[i]

    def matrix(self, sets: tuple[str, ...]) -> np.ndarray:
        """[N, F] the chosen feature sets side by side."""
        return np.concatenate([self.features[s] for s in sets], axis=1)

    def zc_vote(self) -> np.ndarray:
        """[N] the zero-shot vote: the mean over proxies of each cell's rank (NaN ranks last), higher is better."""
        ranks = []
        for v in self.zc.values():
            v = np.where(np.isfinite(v), v, -np.inf)
            ranks.append(np.argsort(np.argsort(v, kind="stable"), kind="stable"))
        return np.mean(ranks, axis=0) if ranks else np.zeros(len(self))

    def zc_score(self, proxy: str | None) -> np.ndarray:
        """[N] one proxy's values (NaN as -inf), or the vote when `proxy` is None. Computed once per pool: a
        guided loop asks for it at every move."""
        if not self.zc:
            raise ConfigError(f"the store has no statistics of {self.space}: a ZC warm start or guided move needs them")
        if proxy is not None and proxy not in self.zc:
            raise ConfigError(f"proxy {proxy!r} is not in this store's statistics; it has: {', '.join(self.zc)}")
        if proxy not in self._scores:
            self._scores[proxy] = (
                self.zc_vote() if proxy is None else np.where(np.isfinite(self.zc[proxy]), self.zc[proxy], -np.inf)
            )
        return self._scores[proxy]


def load_pool(store: str, space: str, target: str, features: tuple[str, ...]) -> Pool:
    """The cells of `space` with statistics and a `target` label, and the feature sets asked for (the one-hot
    encoding always: it defines the neighbourhood). A space without statistics in the store (NB101's labelled
    cells) gives a pool of its labelled graphs, for loops that need no proxies."""
    unknown = [f for f in features if f not in FEATURE_SETS]
    if unknown:
        raise ConfigError(
            f"`features` {', '.join(unknown)}: choose from {', '.join(FEATURE_SETS)}", options=["features"]
        )
    try:
        stats = load_training_set(store, space, target=target)
    except TrainingDataError as e:
        if "no statistics" not in str(e):
            raise
        if {"zc", "nodewise"} & set(features):
            raise ConfigError(f"{e}: the `features` zc and nodewise need them; onehot and graph do not") from None
        stats = None
    graphs = load_graph_set(store, [space], target=target, archs={space: stats.archs} if stats else None)
    archs = list(stats.archs) if stats else list(graphs.archs)
    if graphs.archs != archs:  # graphs come sorted by arch, as the statistics do
        missing = sorted(set(archs) - set(graphs.archs))[:3]
        raise ConfigError(f"store {store} lacks the operator graphs of some {space} cells ({missing}); ingest them")
    valid = np.asarray(stats.labels if stats else graphs.labels, dtype=np.float64)
    _, code = onehot(graphs)
    blocks: dict[str, np.ndarray] = {"onehot": code.astype(np.float64)}
    if "graph" in features:
        blocks["graph"] = graph_features(graphs)[1]
    zc = {n: stats.scalar(n) for n in stats.scalar_names if n not in _NOT_ZC} if stats else {}
    if "zc" in features:
        blocks["zc"] = np.stack([_signed_log(stats.scalar(n)) for n in stats.scalar_names], axis=1)
    if "nodewise" in features:
        nw = np.where(stats.mask[:, None, :], stats.nodewise, np.nan)
        blocks["nodewise"] = _signed_log(nw.reshape(len(stats), -1))
    seconds = _seconds(store, space, stats) if stats else np.zeros(len(archs))
    labels = readers.labels(Catalog(store), space, archs)
    test_label = TEST_OF.get(target, target)
    by = {(r["arch"], r["label"]): r["value"] for r in labels.to_pylist()}
    test = np.array([by.get((a, test_label), np.nan) for a in archs], dtype=np.float64)
    if not np.isfinite(test).any():  # no test label for this space (NB301): the chosen cell's own label
        test_label, test = target, valid
    return Pool(
        space=space,
        target=target,
        archs=archs,
        valid=valid,
        test=test,
        test_label=test_label,
        features=blocks,
        zc=zc,
        proxy_seconds=np.nan_to_num(seconds),
        space_size=_space_size(space),
        code=code.astype(np.int8),
    )


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _seconds(store: str, space: str, stats) -> np.ndarray:
    table = Catalog(store).query(
        "SELECT arch, seconds FROM archs WHERE space = ? AND config_hash = ?", [space, stats.config_hash]
    )
    by = dict(zip(table.column("arch").to_pylist(), table.column("seconds").to_pylist(), strict=True))
    return np.array([by.get(a) or 0.0 for a in stats.archs], dtype=np.float64)


def _space_size(space: str) -> int | None:
    try:
        return sum(1 for _ in get_space(space).enumerate())
    except ArchError:  # not enumerable (NB101, the DARTS-like spaces): no finite size to compare with
        return None
