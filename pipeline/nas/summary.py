"""What a NAS run found, over its seeds (mean ± standard error): the best validation label against queries,
the test label of the chosen cell (the best by validation), regret against the pool's optimum, queries to
reach the pool's top 0.1 % and 1 %, and the seconds its proxies cost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from zcpipe.pipeline.nas.pool import Pool


@dataclass
class Summary:
    """Per-seed outcomes and their means and standard errors."""

    seeds: int
    curve_mean: list[float]  # best validation label after q queries, q = 1..budget (mean over seeds)
    curve_se: list[float]
    best_valid: tuple[float, float]  # (mean, se)
    chosen_test: tuple[float, float]
    regret: tuple[float, float]
    to_top01: tuple[float, float, int]  # (mean, se over the seeds that got there, how many did)
    to_top1: tuple[float, float, int]
    found_best: int  # seeds that queried the pool's best cell
    proxy_seconds: tuple[float, float]

    def row(self) -> dict:
        """One flat row for a table."""
        return {
            "best valid": _pm(self.best_valid),
            "test of chosen": _pm(self.chosen_test),
            "regret": _pm(self.regret, 3),
            "queries to top 0.1%": _reach(self.to_top01, self.seeds),
            "queries to top 1%": _reach(self.to_top1, self.seeds),
            "found the best": f"{self.found_best}/{self.seeds}",
            "proxy s": f"{self.proxy_seconds[0]:.0f}",
        }


def summarize(pool: Pool, queries: pa.Table, budget: int) -> Summary:
    """The Summary of a run's `queries` (the rows of `nas_queries`) on `pool`."""
    top01 = np.quantile(pool.valid, 0.999)
    top1 = np.quantile(pool.valid, 0.99)
    best_cell = float(pool.valid.max())
    index = {a: i for i, a in enumerate(pool.archs)}
    seeds = sorted(set(queries.column("seed").to_pylist()))
    rows = queries.to_pylist()
    curves, bests, tests, reach01, reach1, found, seconds = [], [], [], [], [], 0, []
    for s in seeds:
        mine = [r for r in rows if r["seed"] == s]
        valid = np.array([r["valid"] for r in mine])
        best = np.maximum.accumulate(valid)
        curves.append(np.concatenate([best, np.full(max(0, budget - len(best)), best[-1])])[:budget])
        bests.append(best[-1])
        chosen = mine[int(np.argmax(valid))]
        tests.append(pool.test[index[chosen["arch"]]])
        reach01.append(_first(best, top01))
        reach1.append(_first(best, top1))
        found += bool(best[-1] >= best_cell)
        seconds.append(mine[-1]["proxy_seconds"] or 0.0)
    curve = np.array(curves)
    bests_a = np.array(bests)
    return Summary(
        seeds=len(seeds),
        curve_mean=curve.mean(axis=0).tolist(),
        curve_se=_se_axis(curve).tolist(),
        best_valid=_mse(bests_a),
        chosen_test=_mse(np.array(tests)),
        regret=_mse(best_cell - bests_a),
        to_top01=_reached(reach01),
        to_top1=_reached(reach1),
        found_best=found,
        proxy_seconds=_mse(np.array(seconds)),
    )


def _first(best: np.ndarray, threshold: float) -> float:
    hit = np.flatnonzero(best >= threshold)
    return float(hit[0] + 1) if len(hit) else np.nan


def _mse(x: np.ndarray) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if not len(x):
        return (float("nan"), float("nan"))
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0


def _se_axis(curve: np.ndarray) -> np.ndarray:
    return curve.std(axis=0, ddof=1) / np.sqrt(len(curve)) if len(curve) > 1 else np.zeros(curve.shape[1])


def _reached(x: list[float]) -> tuple[float, float, int]:
    got = np.array([v for v in x if np.isfinite(v)])
    mean, se = _mse(got) if len(got) else (float("nan"), float("nan"))
    return mean, se, len(got)


def _pm(v: tuple[float, float], digits: int = 2) -> str:
    return f"{v[0]:.{digits}f} ± {v[1]:.{digits}f}"


def _reach(v: tuple[float, float, int], seeds: int) -> str:
    return f"{v[0]:.0f} ± {v[1]:.0f} ({v[2]}/{seeds})" if v[2] else f"- (0/{seeds})"
