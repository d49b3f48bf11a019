"""Rankers that need no training: one stored proxy, and the majority vote of Abdelfattah et al.

An architecture whose proxy is NULL (e.g. jacov when the output ignores the input) ranks last:
that is what the NULL means for a search, and every predictor then scores the same test cells.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from zcpipe.predictors.base import Prediction, Predictor
from zcpipe.predictors.registry import PREDICTORS
from zcpipe.store.tensor_reader import TrainingSet


def _null_last(v: np.ndarray) -> np.ndarray:
    """NULL (NaN) scores become one finite value below every real score, so they rank last and stay
    in the metrics (which drop only NaN)."""
    finite = np.isfinite(v)
    if finite.all():
        return v
    lo, hi = (v[finite].min(), v[finite].max()) if finite.any() else (0.0, 0.0)
    return np.where(finite, v, lo - 1.0 - (hi - lo))


@PREDICTORS.register("proxy", summary="one stored proxy as a zero-shot ranker: proxy:<name> (synflow, params, ...)")
class ProxyRanker(Predictor):
    trainable = False
    defaults: ClassVar[dict[str, Any]] = {"proxy": "synflow"}

    def _predict(self, data: TrainingSet) -> Prediction:
        return Prediction(_null_last(data.scalar(self.hparams["proxy"])))


@PREDICTORS.register(
    "vote", summary="majority vote of synflow, jacov and snip (Abdelfattah et al. 2021), Copeland score"
)
class Vote(Predictor):
    trainable = False
    defaults: ClassVar[dict[str, Any]] = {"proxies": "synflow,jacov,snip"}

    def _predict(self, data: TrainingSet) -> Prediction:
        cols = [_null_last(data.scalar(p)) for p in self.hparams["proxies"].split(",")]
        return Prediction(copeland(np.stack(cols, axis=1)).astype(np.float64))


def copeland(scores: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """For each row, how many other rows it beats by a strict majority of the columns (pairwise vote)."""
    n, k = scores.shape
    need = k // 2 + 1
    wins = np.zeros(n, dtype=np.int64)
    for s in range(0, n, chunk):
        block = scores[s : s + chunk]  # [c, k]
        votes = (block[:, None, :] > scores[None, :, :]).sum(axis=2)  # [c, n]
        wins[s : s + chunk] = (votes >= need).sum(axis=1)
    return wins
