"""Predictors stage: ParZC, baselines and rank metrics. Inputs come through the store's training reader."""

from __future__ import annotations

from typing import Any

from zcpipe.predictors.base import FeatureMismatchError, HyperParameterError, Prediction, Predictor
from zcpipe.predictors.metrics import rank_metrics
from zcpipe.predictors.registry import PREDICTORS, UnknownPredictorError


def _load_builtin() -> None:
    # Imported on first use, so `import zcpipe.predictors` does not pull lightgbm.
    from zcpipe.predictors import gbdt, gcn, graf, mlp, parzc, stack, zeroshot  # noqa: F401


PREDICTORS.set_loader(_load_builtin)


def available_predictors() -> list[type[Predictor]]:
    """Every registered predictor class (its `name`, `summary` and `defaults`), by name."""
    return [cls for _, cls in PREDICTORS.entries()]


def get_predictor(name: str, **hparams: Any) -> Predictor:
    """A fresh predictor; `proxy:<name>` is the zero-shot ranker of that stored proxy."""
    if name.startswith("proxy:"):
        proxy = name.split(":", 1)[1]
        if not proxy:
            raise UnknownPredictorError("proxy: needs a proxy name, e.g. proxy:synflow", options=["predictor"])
        return PREDICTORS.get("proxy")(**{**hparams, "proxy": proxy})
    if name == "proxy" or name not in PREDICTORS:  # `proxy` is listed as proxy:<name>, not a choice alone
        raise PREDICTORS.unknown(name, [*PREDICTORS.names(lambda cls: cls.name != "proxy"), "proxy:<name>"])
    return PREDICTORS.get(name)(**hparams)


__all__ = [
    "PREDICTORS",
    "FeatureMismatchError",
    "HyperParameterError",
    "Prediction",
    "Predictor",
    "UnknownPredictorError",
    "available_predictors",
    "get_predictor",
    "rank_metrics",
]
