"""Gradient-boosted trees (LightGBM) on whole-network proxies, or on flattened node-wise ones."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from zcpipe.predictors.base import Prediction, Predictor
from zcpipe.predictors.features import nodewise_input, scalar_input
from zcpipe.predictors.proxy_sets import PAPER_PROXIES
from zcpipe.predictors.registry import PREDICTORS
from zcpipe.store.tensor_reader import TrainingSet


@PREDICTORS.register("gbdt", summary="LightGBM regression on every whole-network proxy (features=nodewise: node-wise)")
class GBDT(Predictor):
    defaults: ClassVar[dict[str, Any]] = {
        "features": "scalar",  # scalar: all whole-network proxies of the store; nodewise: ParZC's input
        "proxies": ",".join(PAPER_PROXIES),  # for features=nodewise
        "n_estimators": 300,
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_child_samples": 5,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
    }

    def __init__(self, **hparams: Any):
        super().__init__(**hparams)
        self.booster = None
        self.columns: list[str] = []

    def _matrix(self, data: TrainingSet) -> np.ndarray:
        if self.hparams["features"] == "nodewise":
            return nodewise_input(data, self.hparams["proxies"].split(",")).reshape(len(data), -1).astype(np.float64)
        return scalar_input(data, self.columns)

    def reads_nodewise(self) -> bool:
        return self.hparams["features"] == "nodewise"

    def _design(self, train: TrainingSet) -> tuple[list[str], np.ndarray]:
        """(the columns it fits on, kept with the model for prediction; the training matrix): here every
        whole-network proxy of the store."""
        self.columns = list(train.scalar_names)
        return self.columns, self._matrix(train)

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
        data = lgb.Dataset(matrix, label=train.labels, params={"min_data_in_bin": 1, "verbose": -1})
        self.booster = lgb.train(params, data, num_boost_round=h["n_estimators"])
        return {"features": self.hparams["features"], "columns": len(self.columns)}

    def _predict(self, data: TrainingSet) -> Prediction:
        return Prediction(np.asarray(self.booster.predict(self._matrix(data)), dtype=np.float64))

    def _export_meta(self) -> dict[str, Any]:
        # LightGBM's own text format: documented, portable, no pickle.
        return {"columns": self.columns, "booster": self.booster.model_to_string()}

    def _restore(self, tensors, meta: dict[str, Any]) -> None:
        import lightgbm as lgb

        self.columns = list(meta["columns"])
        self.booster = lgb.Booster(model_str=meta["booster"])
