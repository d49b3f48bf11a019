"""The report across tasks, in the layout of "A Deeper Look at Zero-Cost Proxies": each proxy's Spearman ρ
per task (its Tables 1-3), the average rank of each proxy per search space and overall (its Table 4),
Dolan-Moré performance profiles (its Figures 7-8), and one proxy-proxy rank-correlation heatmap per task.

A task is one statistics configuration of a space whose dataset has labels of its own in the store (the
`{dataset}_valid` label, else its test label); the numbers come when the store holds two tasks or more.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from zcpipe.store import Catalog, readers

# archs columns that are not proxies.
_NOT_PROXIES = {"seconds"}
MIN_CELLS = 10
# Dolan-Moré's τ grid: a proxy's profile at τ is the share of tasks where its cost (1 − ρ) is within τ
# times the best proxy's on that task.
TAU = np.round(np.linspace(1.0, 4.0, 61), 3)


def tasks(catalog: Catalog) -> list[dict[str, Any]]:
    """(space, config_hash, dataset, label) of every configuration that has a label of its own task."""
    labels = {(r["space"], r["dataset"]): [] for r in readers.label_datasets(catalog)}
    for r in readers.label_datasets(catalog):
        labels[(r["space"], r["dataset"])].append(r["label"])
    out = []
    for c in readers.configs(catalog):
        names = labels.get((c["space"], c.get("dataset")), [])
        if not c.get("dataset") or not names:
            continue
        label = next((n for n in names if n.endswith("_valid")), sorted(names)[0])
        out.append({"space": c["space"], "config_hash": c["config_hash"], "dataset": c["dataset"], "label": label})
    return out


def across_tasks(catalog: Catalog) -> dict[str, Any]:
    """The blog's numbers over every task of the store; empty when it holds fewer than two."""
    found = tasks(catalog)
    per_task = []
    for t in found:
        rel = catalog.query(
            "SELECT * FROM archs_labeled WHERE space = ? AND config_hash = ? AND label = ? AND status <> 'failed'",
            [t["space"], t["config_hash"], t["label"]],
        )
        if rel.num_rows < MIN_CELLS:
            continue
        proxies = [
            f.name
            for f in rel.schema
            if str(f.type) == "double" and f.name not in _NOT_PROXIES | {"value"}
            and rel.column(f.name).null_count < rel.num_rows
        ]  # fmt: skip
        y = np.asarray(rel.column("value").to_pylist(), dtype=float)
        values = {p: _floats(rel.column(p).to_pylist()) for p in proxies}
        rho = {p: _spearman(values[p], y) for p in proxies}
        matrix = (
            stats.spearmanr(np.stack([values[p] for p in proxies], axis=1), nan_policy="omit").statistic
            if len(proxies) > 1
            else 1.0
        )
        name = f"{t['space']} {t['dataset']}"
        per_task.append({**t, "task": name, "n": len(y), "spearman": rho, "proxies": proxies,
                         "heatmap": np.atleast_2d(matrix).tolist()})  # fmt: skip
    if len(per_task) < 2:
        return {}
    common = sorted(set.intersection(*(set(t["proxies"]) for t in per_task)))
    ranks = {t["task"]: _ranks(t["spearman"], common) for t in per_task}
    by_space: dict[str, dict[str, float]] = {}
    for space in sorted({t["space"] for t in per_task}):
        mine = [ranks[t["task"]] for t in per_task if t["space"] == space]
        by_space[space] = {p: float(np.mean([r[p] for r in mine])) for p in common}
    overall = {p: float(np.mean([r[p] for r in ranks.values()])) for p in common}
    return {
        "tasks": per_task,
        "proxies": common,
        "ranks": ranks,
        "average_rank": {"by_space": by_space, "overall": overall},
        "profiles": performance_profiles({t["task"]: t["spearman"] for t in per_task}, common),
    }


def performance_profiles(rho: dict[str, dict[str, float]], proxies: list[str]) -> dict[str, Any]:
    """Dolan-Moré profiles with cost 1 − ρ: for each proxy, the share of tasks within τ of the best."""
    cost = np.array([[1.0 - np.nan_to_num(rho[t][p], nan=-1.0) for p in proxies] for t in rho])  # NaN: worst
    best = np.maximum(cost.min(axis=1, keepdims=True), 1e-12)
    ratio = cost / best
    return {"tau": TAU.tolist(), "share": {p: [(ratio[:, j] <= tau + 1e-12).mean() for tau in TAU]
                                           for j, p in enumerate(proxies)}}  # fmt: skip


def _ranks(rho: dict[str, float], proxies: list[str]) -> dict[str, float]:
    """1 for the best ρ; ties share the average rank; an undefined ρ ranks last."""
    scores = np.array([np.nan_to_num(rho[p], nan=-2.0) for p in proxies])
    return dict(zip(proxies, stats.rankdata(-scores).tolist(), strict=True))


def _floats(values: list) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0:
        return None
    return float(stats.spearmanr(x[ok], y[ok]).statistic)
