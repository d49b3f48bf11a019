"""`zcpipe nas`: run a search loop for a number of seeds on a store's cells, keeping each seed's query history
in the store (`nas_runs`, `nas_queries`), so a killed run resumes where it stopped.

Resuming replays: an algorithm is a function of its seed and of what its queries returned, so the run is
started again with the recorded queries answered from the history (each checked to be the cell the
algorithm asks for) and continues from there, exactly as if it had never stopped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from zcpipe.pipeline.errors import ConfigError
from zcpipe.pipeline.nas import algorithms
from zcpipe.pipeline.nas.pool import FEATURE_SETS, Pool, load_pool
from zcpipe.pipeline.nas.summary import Summary, summarize
from zcpipe.store import Catalog, readers
from zcpipe.store.model_artifacts import check_name
from zcpipe.workers import failpoints

FLUSH_EVERY = 50  # queries between writes of a seed's history: a kill loses at most these, replayed on resume


@dataclass(frozen=True)
class NasConfig:
    """One NAS experiment: an algorithm, its features, a budget and seeds, on one space and target."""

    store: str
    space: str
    target: str
    algo: str
    budget: int = 300
    seeds: int = 20
    features: tuple[str, ...] = ("onehot",)
    warm_start: str | None = None
    guided: bool = False
    name: str | None = None

    def __post_init__(self) -> None:
        if self.algo not in algorithms.ALGORITHMS:
            raise ConfigError(f"`algo` {self.algo!r}: choose {', '.join(algorithms.ALGORITHMS)}", options=["algo"])
        if self.budget < 1 or self.seeds < 1:
            raise ConfigError("`budget` and `seeds` must be at least 1", options=["budget", "seeds"])
        unknown = [f for f in self.features if f not in FEATURE_SETS]
        if unknown or not self.features:
            raise ConfigError(f"`features`: choose from {', '.join(FEATURE_SETS)}", options=["features"])
        if self.warm_start is not None and self.warm_start != "zc" and not self.warm_start.startswith("zc:"):
            raise ConfigError("`warm_start` is zc (the zero-shot vote) or zc:<proxy>", options=["warm_start"])
        if self.guided and self.algo not in ("rea", "local"):
            raise ConfigError("`guided` (ZC-guided moves) is for rea and local", options=["guided"])
        if self.name is not None:
            check_name(self.name)

    @property
    def run_id(self) -> str:
        feats = ".".join(self.features)
        extra = (f"-ws.{self.warm_start.replace(':', '.')}" if self.warm_start else "") + ("-guided" * self.guided)
        return self.name or f"nas-{self.space}-{self.target}-{self.algo}-{feats}{extra}-b{self.budget}"

    def options(self) -> algorithms.SearchOptions:
        return algorithms.SearchOptions(features=self.features, warm_start=self.warm_start, guided=self.guided)


@dataclass
class NasResult:
    """What `run_nas` did: the run, whether it resumed, and the summary over its seeds."""

    run_id: str
    pool: int
    space_size: int | None
    resumed_queries: int
    summary: Summary
    notes: list[str] = field(default_factory=list)


def run_nas(cfg: NasConfig, progress: bool = True, pool: Pool | None = None) -> NasResult:
    """Run (or resume) `cfg` for every seed; returns the summary. `pool` skips loading it (benchmarks)."""
    pool = pool or load_pool(cfg.store, cfg.space, cfg.target, cfg.features)
    catalog = Catalog(cfg.store)
    run_id = cfg.run_id
    prior = readers.nas_run(catalog, run_id) if catalog.exists() else None
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("store", "name")}
    recorded = (prior or {}).get("config") or {}
    recorded = json.loads(recorded) if isinstance(recorded, str) else recorded
    if prior is not None and {k: recorded.get(k) for k in settings} != _json(settings):
        raise ConfigError(f"NAS run {run_id!r} exists with other settings; choose another `name`", options=["name"])
    history = _history(catalog, run_id) if prior is not None else {}
    with catalog.writer() as w:
        w.start_nas_run({"run_id": run_id, "space": cfg.space, "target": cfg.target, "algo": cfg.algo,
                         "features": ",".join(cfg.features), "warm_start": cfg.warm_start, "guided": cfg.guided,
                         "budget": cfg.budget, "seeds": cfg.seeds, "pool": len(pool), "space_size": pool.space_size,
                         "config": _json(settings)})  # fmt: skip
    resumed = sum(len(h) for h in history.values())
    bar = tqdm(total=cfg.budget * cfg.seeds, initial=resumed, unit="query", desc=f"nas {cfg.algo}",
               disable=not progress, dynamic_ncols=True)  # fmt: skip
    state = "interrupted"
    try:
        for seed in range(cfg.seeds):
            _one_seed(cfg, pool, run_id, seed, history.get(seed, []), bar)
        state = "finished"
    finally:
        bar.close()
        with catalog.writer() as w:
            w.finish_nas_run(run_id, state)
    notes = []
    if pool.restricted:
        whole = f"of the space's {pool.space_size}" if pool.space_size else "stored"
        notes.append(f"restricted to the {len(pool)} cells with statistics and labels in the store ({whole})")
    summary = summarize(pool, readers.nas_queries(catalog, run_id), cfg.budget)
    return NasResult(run_id, len(pool), pool.space_size, resumed, summary, notes)


def _one_seed(cfg: NasConfig, pool: Pool, run_id: str, seed: int, done: list[dict], bar) -> None:
    if len(done) >= min(cfg.budget, len(pool)):
        return
    replay = [r["arch"] for r in done]
    rows = list(done)
    pool.touched.clear()

    def flush() -> None:
        with Catalog(cfg.store).writer() as w:
            w.record_nas_queries(run_id, seed, pa.Table.from_pylist(rows, schema=_SCHEMA))

    position = 0

    def ask(i: int) -> float:
        nonlocal position
        if position >= cfg.budget:
            raise algorithms.BudgetSpent
        arch = pool.archs[i]
        if position < len(replay):
            if replay[position] != arch:
                raise ConfigError(
                    f"NAS run {run_id!r} seed {seed}: its recorded query {position} was {replay[position]}, but the "
                    f"loop now asks for {arch} (the store's cells or the code changed); start a new run (`name`)",
                    options=["name"],
                )
        else:
            best = max(pool.valid[i], rows[-1]["best_valid"] if rows else -np.inf)
            rows.append({"run_id": run_id, "seed": seed, "query": position, "arch": arch,
                         "valid": float(pool.valid[i]), "test": _float(pool.test[i]), "best_valid": float(best),
                         "proxy_seconds": pool.proxy_cost()})  # fmt: skip
            bar.update(1)
            if len(rows) % FLUSH_EVERY == 0:
                flush()
                failpoints.hold("nas-flush", f"{seed}-{len(rows)}")  # tests: a kill lands after this flush
        position += 1
        return float(pool.valid[i])

    rng = np.random.default_rng([seed, 20241204])
    algorithms.run(cfg.algo, pool, ask, rng, cfg.options())
    flush()


_SCHEMA = pa.schema([("run_id", pa.string()), ("seed", pa.int32()), ("query", pa.int32()), ("arch", pa.string()),
                     ("valid", pa.float64()), ("test", pa.float64()), ("best_valid", pa.float64()),
                     ("proxy_seconds", pa.float64())])  # fmt: skip


def _history(catalog: Catalog, run_id: str) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for r in readers.nas_queries(catalog, run_id).to_pylist():
        out.setdefault(r["seed"], []).append(r)
    return out


def _float(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _json(settings: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
