"""Predictors stage: rank metrics now; ParZC, TG-NAS and baselines read the store through its readers."""

from zcpipe.predictors.metrics import rank_metrics

__all__ = ["rank_metrics"]
