"""What a predictor fits: the label itself, or a transform of it that suits a ranking metric."""

from __future__ import annotations

import numpy as np
from scipy import stats

from zcpipe.predictors.base import HyperParameterError


def label_transform(labels: np.ndarray, kind: str) -> np.ndarray:
    """What the loss compares. zscore keeps label gaps (NB201's long tail of failed cells then dominates
    the pairs DiffKendall weighs); rank spaces cells evenly, as Kendall's τ counts them."""
    if kind == "rank":
        labels = stats.rankdata(labels)
    elif kind != "zscore":
        raise HyperParameterError(f"labels={kind!r}: choose zscore or rank")
    return (labels - labels.mean()) / max(labels.std(), 1e-8)
