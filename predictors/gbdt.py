"""Gradient-boosted trees (LightGBM) on whole-network proxies, flattened node-wise ones, the cell graph's
features, or any mix of them (`features=zc,graph`)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from zcpipe.predictors.base import FeatureMismatchError, HyperParameterError, Prediction, Predictor
from zcpipe.predictors.features import graph_input, nodewise_input, scalar_input
from zcpipe.predictors.label_transforms import label_transform
from zcpipe.predictors.proxy_sets import PAPER_PROXIES
from zcpipe.predictors.registry import PREDICTORS
from zcpipe.store.tensor_reader import TrainingSet


@PREDICTORS.register("gbdt", summary="LightGBM on whole-network proxies (features=zc,nodewise,graph: any mix)")
class GBDT(Predictor):
    feature_sets: ClassVar[tuple[str, ...]] = ("zc", "scalar", "nodewise", "graph")  # scalar: zc's older name
    unprefixed_before: ClassVar[bool] = True  # models saved before `columns` named their set (restore reads them)
    defaults: ClassVar[dict[str, Any]] = {
        # zc: all whole-network proxies of the store; nodewise: ParZC's input, flattened; graph: the cell
        # graph's features (predictors/graph_features.py). Comma-separated.
        "features": "zc",
        "proxies": ",".join(PAPER_PROXIES),  # for features=nodewise
        # for features=zc: which whole-network proxies (comma-separated), or `all` the configuration holds
        "zc_proxies": "all",
        "n_estimators": 300,
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_child_samples": 5,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        # What the trees regress: rank (ranks, unit variance), zscore, or raw. Rank, chosen on validation cells
        # (156 training cells, 10 seeds): 0.746 against raw's 0.678; NB201's failed cells no longer dominate.
        "labels": "rank",
    }

    def __init__(self, **hparams: Any):
        super().__init__(**hparams)
        sets = self._sets()
        unknown = sorted(set(sets) - set(self.feature_sets))
        if unknown or not sets:
            raise HyperParameterError(
                f"{self.name} features={self.hparams['features']!r}: choose from "
                f"{', '.join(self.feature_sets)} (comma-separated)"
            )
        if self.hparams["labels"] not in ("raw", "zscore", "rank"):
            raise HyperParameterError(f"{self.name} labels={self.hparams['labels']!r}: choose raw, zscore or rank")
        if "graph" in sets and self.input_kind == "statistics":  # graf reads graphs already
            self.input_kind = "statistics+graphs"
        self.booster = None
        self.columns: list[str] = []

    def zc_names(self, held: list[str]) -> list[str]:
        """The whole-network proxies `zc` reads: those `zc_proxies` names (each must be held), or all."""
        want = str(self.hparams["zc_proxies"])
        if want == "all":
            return list(held)
        names = [n for n in want.split(",") if n]
        missing = [n for n in names if n not in held]
        if missing or not names:
            raise FeatureMismatchError(
                f"{self.name} zc_proxies={want!r}: {', '.join(missing) or 'none named'} not among the "
                f"configuration's whole-network proxies ({', '.join(held)}); name some of those, or `all`"
            )
        return names

    def _sets(self) -> list[str]:
        return [("zc" if f == "scalar" else f) for f in str(self.hparams["features"]).split(",") if f]

    def _matrix(self, data: TrainingSet) -> np.ndarray:
        """The design matrix of the fitted `columns` (prefixed by set: zc:, nodewise:, graph:)."""
        sets = dict.fromkeys(c.split(":", 1)[0] for c in self.columns)
        return np.concatenate([self._part(s, data, [c.split(":", 1)[1] for c in self.columns
                                                    if c.startswith(s + ":")])[1] for s in sets], axis=1)  # fmt: skip

    def _part(self, which: str, data: TrainingSet, cols: list[str] | None = None) -> tuple[list[str], np.ndarray]:
        """(column names, matrix) of one feature set; `cols`: the fitted columns of that set."""
        if which == "zc":
            names = self.zc_names(list(data.scalar_names)) if cols is None else cols
            return names, scalar_input(data, names)
        if which == "nodewise":
            x = nodewise_input(data, self.hparams["proxies"].split(",")).reshape(len(data), -1).astype(np.float64)
            return [str(i) for i in range(x.shape[1])], x
        return graph_input(data, cols)

    def reads_nodewise(self) -> bool:
        return "nodewise" in self._sets()

    def _design(self, train: TrainingSet) -> tuple[list[str], np.ndarray]:
        """(the columns it fits on, kept with the model for prediction; the training matrix), each set once."""
        parts = [(s, *self._part(s, train)) for s in dict.fromkeys(self._sets())]
        self.columns = [f"{s}:{n}" for s, names, _ in parts for n in names]
        return self.columns, np.concatenate([m for _, _, m in parts], axis=1)

    def _fit(self, train: TrainingSet, seed: int) -> dict[str, Any]:
        import lightgbm as lgb

        h = self.hparams
        self.columns, matrix = self._design(train)
        params = {
            "objective": "regression",
            "learning_rate": h["learning_rate"],
            "num_leaves": h["num_leaves"],
            "min_data_in_leaf": h["min_child_samples"],
            "bagging_fraction": h["subsample"],
            "bagging_freq": 1,
            "feature_fraction": h["colsample_bytree"],
            "seed": seed,
            "num_threads": 1,
            "verbose": -1,
        }
        labels = train.labels if h["labels"] == "raw" else label_transform(train.labels, h["labels"])
        data = lgb.Dataset(matrix, label=labels, params={"min_data_in_bin": 1, "verbose": -1})
        self.booster = lgb.train(params, data, num_boost_round=h["n_estimators"])
        return {"features": self.hparams["features"], "columns": len(self.columns)}

    def _predict(self, data: TrainingSet) -> Prediction:
        return Prediction(np.asarray(self.booster.predict(self._matrix(data)), dtype=np.float64))

    def _export_meta(self) -> dict[str, Any]:
        # LightGBM's own text format: documented, portable, no pickle.
        return {"columns": self.columns, "prefixed": True, "booster": self.booster.model_to_string()}

    def _restore(self, tensors, meta: dict[str, Any]) -> None:
        import lightgbm as lgb

        self.columns = list(meta["columns"])
        if self.unprefixed_before and not meta.get("prefixed"):  # saved before feature sets were prefixed
            self.columns = ["nodewise:0"] if self.reads_nodewise() else [f"zc:{c}" for c in self.columns]
        self.booster = lgb.Booster(model_str=meta["booster"])
