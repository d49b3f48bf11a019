"""Predictors stage: ParZC, baselines and rank metrics. Inputs come through the store's training reader."""

from zcpipe.predictors.base import FeatureMismatchError, HyperParameterError, Prediction, Predictor
from zcpipe.predictors.metrics import rank_metrics
from zcpipe.predictors.registry import (
    PredictorInfo,
    UnknownPredictorError,
    available_predictors,
    get_predictor,
    register_predictor,
)

__all__ = [
    "FeatureMismatchError",
    "HyperParameterError",
    "Prediction",
    "Predictor",
    "PredictorInfo",
    "UnknownPredictorError",
    "available_predictors",
    "get_predictor",
    "rank_metrics",
    "register_predictor",
]
