import numpy as np
import pytest

from zcpipe.predictors import rank_metrics


def test_rank_metrics_on_known_orders():
    truth = np.arange(20.0)
    m = rank_metrics(truth * 3 + 1, truth)
    assert m["kendall"] == pytest.approx(1.0) and m["spearman"] == pytest.approx(1.0) and m["precision@0.1"] == 1.0
    r = rank_metrics(-truth, truth)
    assert r["kendall"] == pytest.approx(-1.0) and r["precision@0.1"] == 0.0
    # one swapped adjacent pair among 20: τ = 1 − 2·1/190
    p = truth.copy()
    p[[3, 4]] = p[[4, 3]]
    assert rank_metrics(p, truth)["kendall"] == pytest.approx(1 - 2 / 190)


def test_nan_pairs_are_dropped_not_zeroed():
    truth = np.arange(10.0)
    pred = truth.copy()
    pred[2] = np.nan
    m = rank_metrics(pred, truth)
    assert m["n"] == 9 and m["spearman"] == pytest.approx(1.0)
