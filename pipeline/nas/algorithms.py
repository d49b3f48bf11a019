"""The search loops: random search, regularised evolution, local search and BANANAS, each over a Pool with a
query budget. An algorithm calls `ask(i)` to query cell i (its validation label comes back) until the
budget is spent (`BudgetSpent`). Every random draw comes from the generator it is given, so a run is a
function of its seed: a killed run is resumed by replaying its recorded queries (pipeline/nas/loop.py).

Settings are NASLib's defaults where it has them (regularised evolution: population 30, tournament 10;
local search: 10 random initial cells; BANANAS: 10 initial cells, 10 per round, an ensemble of 5,
independent Thompson sampling over mutations of the best cells). Where the pool is small enough to score
whole (the stored cells of a space, up to 20,000), BANANAS maximises its acquisition over every unseen cell
instead of over mutations: the same acquisition, maximised exactly rather than by a local heuristic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from zcpipe.pipeline.nas.pool import Pool

ALGORITHMS = ("random", "rea", "local", "bananas")


class BudgetSpent(Exception):
    """The query budget is used up: the algorithm stops here."""


@dataclass(frozen=True)
class SearchOptions:
    """What shapes a loop beyond its algorithm: features for BANANAS, the warm start, ZC-guided moves."""

    features: tuple[str, ...] = ("onehot",)
    warm_start: str | None = None  # None, "zc" (the zero-shot vote) or "zc:<proxy>"
    guided: bool = False  # rea/local: proposals ranked by the ZC score (or the vote)
    population: int = 30
    tournament: int = 10
    initial: int = 10
    per_round: int = 10
    ensemble: int = 5
    candidates: int = 100  # random cells beside the mutations BANANAS scores each round (on a large pool)
    exact_up_to: int = 20_000  # a pool this small is scored whole each round: the acquisition is maximised exactly


Ask = Callable[[int], float]


def run(algo: str, pool: Pool, ask: Ask, rng: np.random.Generator, opts: SearchOptions) -> None:
    """Run `algo` until `ask` raises BudgetSpent (or the pool runs out of cells)."""
    loop = {"random": _random, "rea": _rea, "local": _local, "bananas": _bananas}[algo]
    seen: dict[int, float] = {}

    def once(i: int) -> float:  # a cell is queried once; asking again costs nothing
        if i not in seen:
            seen[i] = ask(i)
        return seen[i]

    try:
        loop(pool, once, seen, rng, opts)
    except BudgetSpent:
        return


def _zc(pool: Pool, opts: SearchOptions) -> np.ndarray:
    """The ZC score a warm start or a guided move ranks by (callers `touch` the cells they read it of)."""
    proxy = opts.warm_start.split(":", 1)[1] if opts.warm_start and ":" in opts.warm_start else None
    return pool.zc_score(proxy)


def _initial(pool: Pool, n: int, rng: np.random.Generator, opts: SearchOptions) -> list[int]:
    """The first cells: the top `n` by the ZC score for a warm start (as the zero-cost paper), else random."""
    if opts.warm_start:
        pool.touch(np.arange(len(pool)))  # ranking every cell reads every cell's statistics
        return list(np.argsort(-_zc(pool, opts), kind="stable")[:n])
    return list(rng.choice(len(pool), size=min(n, len(pool)), replace=False))


def _unseen(pool: Pool, seen: dict, rng: np.random.Generator) -> int:
    left = np.setdiff1d(np.arange(len(pool)), np.fromiter(seen, int, len(seen)), assume_unique=True)
    if not len(left):
        raise BudgetSpent  # every cell queried: nothing left to search
    return int(rng.choice(left))


def _random(pool: Pool, ask: Ask, seen: dict, rng: np.random.Generator, opts: SearchOptions) -> None:
    for i in _initial(pool, opts.initial, rng, opts) if opts.warm_start else []:
        ask(int(i))
    while True:
        ask(_unseen(pool, seen, rng))


def _mutant(pool: Pool, parent: int, seen: dict, rng: np.random.Generator, opts: SearchOptions) -> int:
    """An unseen neighbour of `parent`: a random one, or with `guided` the best by ZC score of up to 10."""
    near = [int(j) for j in pool.neighbours(parent) if int(j) not in seen]
    if not near:
        return _unseen(pool, seen, rng)
    if opts.guided:
        picks = rng.permutation(near)[:10]
        pool.touch(picks)
        return int(picks[np.argmax(_zc(pool, opts)[picks])])
    return int(rng.choice(near))


def _rea(pool: Pool, ask: Ask, seen: dict, rng: np.random.Generator, opts: SearchOptions) -> None:
    population: deque[int] = deque()
    for i in _initial(pool, opts.population, rng, opts):
        ask(int(i))
        population.append(int(i))
    while True:
        sample = rng.choice(len(population), size=min(opts.tournament, len(population)), replace=False)
        parent = max((population[k] for k in sample), key=lambda i: seen[i])
        child = _mutant(pool, parent, seen, rng, opts)
        ask(child)
        population.append(child)
        population.popleft()  # regularised: the oldest dies, not the worst


def _local(pool: Pool, ask: Ask, seen: dict, rng: np.random.Generator, opts: SearchOptions) -> None:
    start = _initial(pool, opts.initial, rng, opts)
    for i in start:
        ask(int(i))
    current = max(start, key=lambda i: seen[int(i)])
    while True:
        near = [int(j) for j in pool.neighbours(int(current)) if int(j) not in seen]
        if opts.guided:
            pool.touch(near)
            score = _zc(pool, opts)
            near.sort(key=lambda j: -score[j])
        else:
            near = [int(j) for j in rng.permutation(near)]
        for j in near:
            ask(j)
        best = max([int(current), *near], key=lambda i: seen[i])
        if best == current:  # a local optimum: start again from a random cell
            current = _unseen(pool, seen, rng)
            ask(current)
        else:
            current = best


def _bananas(pool: Pool, ask: Ask, seen: dict, rng: np.random.Generator, opts: SearchOptions) -> None:
    x = pool.matrix(opts.features)
    for i in _initial(pool, opts.initial, rng, opts):
        ask(int(i))
    while True:
        done = np.fromiter(seen, int, len(seen))
        predict = _ensemble(x[done], np.array([seen[i] for i in done]), opts.ensemble, rng)
        best = done[np.argsort([-seen[i] for i in done])[: opts.per_round]]
        pool_left = np.setdiff1d(np.arange(len(pool)), done, assume_unique=True)
        if not len(pool_left):
            raise BudgetSpent
        if len(pool) <= opts.exact_up_to:  # every unseen cell: no mutation heuristic needed to maximise it
            candidates = pool_left
        else:
            mutations = {int(j) for b in best for j in pool.neighbours(int(b)) if int(j) not in seen}
            extra = rng.choice(pool_left, size=min(opts.candidates, len(pool_left)), replace=False)
            candidates = np.array(sorted(mutations | {int(j) for j in extra}))
        if opts.features != ("onehot",):
            pool.touch(candidates)  # their statistics were read: the run pays for their proxies
        mu, sigma = predict(x[candidates])
        draw = rng.normal(mu, np.maximum(sigma, 1e-9))  # independent Thompson sampling
        for j in candidates[np.argsort(-draw, kind="stable")[: opts.per_round]]:
            ask(int(j))


def _ensemble(x: np.ndarray, y: np.ndarray, k: int, rng: np.random.Generator):
    """k gradient-boosted trees on bootstrap resamples; returns z -> (mean, std) of their predictions."""
    import lightgbm as lgb

    models = []
    for m in range(k):
        rows = rng.choice(len(x), size=len(x), replace=True)
        model = lgb.LGBMRegressor(n_estimators=100, learning_rate=0.1, num_leaves=15, min_child_samples=3,
                                  colsample_bytree=0.8, random_state=int(rng.integers(2**31)) + m, n_jobs=1,
                                  deterministic=True, force_row_wise=True, verbose=-1)  # fmt: skip
        model.fit(x[rows], y[rows])
        models.append(model)

    def predict(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.stack([m.predict(z) for m in models])
        return out.mean(axis=0), out.std(axis=0)

    return predict
