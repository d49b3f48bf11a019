"""GRAF-like trees: LightGBM on features read off the cell's operator graph (operator counts, counts on
live input-to-output paths, path lengths, degrees; Kadlecová et al. 2024, "Surprisingly strong
performance prediction with neural graph features") beside the whole-network proxies.

The graph features come from the graph the store keeps for every architecture (predictors/graph_features.py),
so they exist for NB201, NB101 and the DARTS-like spaces alike; `features` picks the sets: `graph`, `zc`
(every whole-network proxy of the configuration), `onehot` (operators per node and the adjacency).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from zcpipe.predictors.base import FeatureMismatchError
from zcpipe.predictors.features import aligned
from zcpipe.predictors.gbdt import GBDT
from zcpipe.predictors.graph_features import graph_features, onehot
from zcpipe.predictors.registry import PREDICTORS
from zcpipe.store.graph_reader import GraphSet

FEATURE_SETS = ("graph", "zc", "onehot")


@PREDICTORS.register("graf", summary="LightGBM on graph features of the cell (GRAF-like) and whole-network proxies")
class Graf(GBDT):
    input_kind: str = "graphs+statistics"
    feature_sets: ClassVar[tuple[str, ...]] = FEATURE_SETS
    unprefixed_before: ClassVar[bool] = False
    # Chosen on validation cells carved from 156 training cells (5 seeds; never a test cell): smaller trees
    # that may end in two cells, more of them, a slower rate (bench/README.md, "Graph features").
    defaults: ClassVar[dict[str, Any]] = {
        **{k: v for k, v in GBDT.defaults.items() if k not in ("features", "proxies")},
        "features": "graph,zc",
        "num_leaves": 7,
        "min_child_samples": 2,
        "n_estimators": 500,
        "learning_rate": 0.03,
    }

    def reads_nodewise(self) -> bool:
        return False

    def fit(self, train: GraphSet, *, seed: int) -> dict[str, Any]:  # type: ignore[override]
        if train.labels is None:
            raise ValueError("fit needs a GraphSet loaded with a target label")
        self.fitted_on = {"spaces": sorted(set(train.spaces.tolist())), "config_hash": train.config_hash,
                          "arch_stats": list(train.arch_stat_names)}  # fmt: skip
        return self._fit(train, seed)

    def check_features(self, data: GraphSet) -> None:  # type: ignore[override]
        fitted = self.fitted_on
        if fitted is None:
            raise RuntimeError(f"predictor {self.name!r} is not fitted")
        if "zc" in self._sets() and (not self.reads_config(data.config_hash)
                                     or list(data.arch_stat_names) != fitted["arch_stats"]):  # fmt: skip
            raise FeatureMismatchError(
                f"predictor {self.name!r} reads whole-network statistics of config_hash {fitted['config_hash']}; "
                f"these graphs carry {data.config_hash or 'none'}: ingest that configuration for this space"
            )

    def _design(self, train: GraphSet) -> tuple[list[str], np.ndarray]:  # type: ignore[override]
        return self._features(train)

    def _features(self, data: GraphSet) -> tuple[list[str], np.ndarray]:
        """(column names, matrix) of the chosen feature sets, each computed once."""
        parts = self._parts(data)
        names = [name for part in parts for name in part[0]]
        return names, np.concatenate([part[1] for part in parts], axis=1).astype(np.float64)

    def _parts(self, data: GraphSet) -> list[tuple[list[str], np.ndarray]]:
        sets = self._sets()
        parts = []
        if "graph" in sets:
            parts.append(graph_features(data))
        if "zc" in sets:
            held = list(data.arch_stat_names)
            stats = np.zeros((len(data), 0)) if data.arch_stats is None else np.asarray(data.arch_stats, np.float64)
            names = self.zc_names(held) if held else []
            parts.append(([f"zc:{n}" for n in names], stats[:, [held.index(n) for n in names]]))
        if "onehot" in sets:
            parts.append(onehot(data))
        return parts

    def _matrix(self, data: GraphSet) -> np.ndarray:  # type: ignore[override]
        # Another vocabulary (a space with fewer operators): the columns it was fitted on, zero where absent.
        return aligned(*self._features(data), self.columns)
