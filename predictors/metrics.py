"""Rank metrics between predicted scores and ground truth (scipy's implementations)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def rank_metrics(pred: np.ndarray, truth: np.ndarray, top_k: float = 0.1) -> dict[str, float]:
    """Kendall τ, Spearman ρ, Pearson r, precision@top-k and Kendall τ within the true top-k.

    Pairs where either side is NaN are dropped; `n` says how many were used.
    """
    pred, truth = np.asarray(pred, dtype=float), np.asarray(truth, dtype=float)
    keep = np.isfinite(pred) & np.isfinite(truth)
    p, t = pred[keep], truth[keep]
    k = max(2, round(top_k * len(t)))
    top_true = np.argsort(-t)[:k]
    top_pred = np.argsort(-p)[:k]
    return {
        "n": int(keep.sum()),
        "kendall": float(stats.kendalltau(p, t).statistic),
        "spearman": float(stats.spearmanr(p, t).statistic),
        "pearson": float(stats.pearsonr(p, t).statistic),
        f"precision@{top_k:g}": len(set(top_true) & set(top_pred)) / k,
        f"kendall@{top_k:g}": float(stats.kendalltau(p[top_true], t[top_true]).statistic),
    }
