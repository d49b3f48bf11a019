"""Batch re-training on Ray Tune: grid sweeps (predictors x train sizes x seeds) and hyper-parameter
search (Optuna), on the embedded Ray or a cluster (`--ray-address`).

Every grid point is one `train` run with a deterministic model name, `<sweep>-<predictor>-n<size>-s<seed>`,
so the `models` table is the sweep's state: a rerun after an interruption trains only the points whose
model is missing, and `commit_model` refuses a name twice, so two runs never register a point twice.

Hyper-parameter search scores each trial on a validation part carved from the training cells
(`training.validate`), never on a test cell; the best configuration is then refit on all the training
cells and registered as `<sweep>-best`. Its Tune experiment lives in the store, under `sweeps/` (on
object storage too), and is restored by `Tuner.restore`, so an interrupted search finishes the trials it
lacks, from any node. Fits report once, at the end, so there is nothing for ASHA to stop early.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from zcpipe.errors import PipelineError
from zcpipe.pipeline.errors import ConfigError
from zcpipe.pipeline.ingest.runtime import start_ray
from zcpipe.pipeline.training.config import TrainConfig
from zcpipe.pipeline.training.fit import train, validate
from zcpipe.store.layout import StoreLayout
from zcpipe.store.model_artifacts import ModelError, check_name, model_names
from zcpipe.workers import failpoints

log = logging.getLogger(__name__)


class SweepError(PipelineError, RuntimeError):
    """A sweep or search ran but gave nothing to choose from."""


def _search_spaces() -> dict[str, dict[str, Any]]:
    from ray import tune

    neural = {"lr": tune.loguniform(1e-4, 1e-2), "weight_decay": tune.loguniform(1e-5, 1e-2)}
    return {
        "gbdt": {
            "n_estimators": tune.randint(100, 800),
            "learning_rate": tune.loguniform(0.01, 0.3),
            "num_leaves": tune.randint(4, 64),
            "min_child_samples": tune.randint(2, 30),
        },
        "mlp": {**neural, "dropout": tune.uniform(0.0, 0.3)},
        "parzc": {**neural, "dropout": tune.uniform(0.0, 0.3), "dim": tune.choice([32, 64, 128])},
        "zc-gcn": {**neural, "hidden": tune.choice([64, 128, 256])},
        "tgnas": {**neural, "hidden": tune.choice([64, 128, 256])},
    }


@dataclass(frozen=True)
class SweepConfig:
    """A grid sweep or a search, validated once; `base` carries what every run shares."""

    base: TrainConfig  # store, space, target, hparams, train_spaces, config_hash (predictor/seed/size overridden)
    name: str
    predictors: tuple[str, ...]
    train_sizes: tuple[int | None, ...]
    seeds: tuple[int, ...]
    hpo_trials: int = 0
    cpus_per_trial: float = 1.0
    ray_address: str | None = None
    validation_fraction: float = 0.25

    def __post_init__(self) -> None:
        check_name(self.name)
        if not self.predictors or not self.train_sizes or not self.seeds:
            raise ConfigError("a sweep needs at least one predictor, train size and seed")
        for p in self.predictors:  # an unknown predictor or option fails before any trial starts
            replace(self.base, predictor=p, name=None)
        if self.hpo_trials:
            spaces = _search_spaces()
            if len(self.predictors) != 1 or self.predictors[0] not in spaces:
                raise ConfigError(
                    f"`hpo_trials` searches one predictor with a search space: one of {', '.join(spaces)}",
                    options=["hpo_trials"],
                )
        if not 0 < self.validation_fraction < 1:
            raise ConfigError("the validation fraction must be between 0 and 1")

    def points(self) -> list[tuple[str, int | None, int]]:
        return [(p, n, s) for p in self.predictors for n in self.train_sizes for s in self.seeds]

    def point_name(self, predictor: str, size: int | None, seed: int) -> str:
        return f"{self.name}-{predictor.replace(':', '-')}-n{'all' if size is None else size}-s{seed}"


@contextmanager
def _ray_for(cfg: SweepConfig) -> Iterator[None]:
    """Ray for the block: the cluster at `ray_address`, or an embedded one this block starts and stops."""
    started = start_ray(cfg.ray_address)
    try:
        yield
    finally:
        if started:
            import ray

            ray.shutdown()


def _progress(total: int, desc: str, enabled: bool):
    from ray import tune
    from tqdm import tqdm

    class Progress(tune.Callback):
        def __init__(self) -> None:
            self.bar = tqdm(total=total, desc=desc, unit="trial", disable=not enabled, dynamic_ncols=True)

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self.bar.update(1)

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self.bar.update(1)

        def on_experiment_end(self, trials, **info) -> None:
            self.bar.close()

    return Progress()


def _tune_storage(store: str):
    """(storage_path, storage_filesystem) of the store's Tune experiments: `<store>/sweeps`. On object
    storage Tune writes there through the store's own fsspec filesystem, so trials on any node report to
    it and a search resumes from any node, e.g. a RayJob's new driver pod."""
    layout = StoreLayout(store)
    if not layout.remote:
        (layout.root / "sweeps").mkdir(parents=True, exist_ok=True)
        return str(layout.root / "sweeps"), None
    import pyarrow.fs as pafs

    return layout.key("sweeps"), pafs.PyFileSystem(pafs.FSSpecHandler(layout.fs))


def _run_config(cfg: SweepConfig, experiment: str, callbacks: list):
    from ray import tune

    path, fs = _tune_storage(cfg.base.store)
    return tune.RunConfig(name=experiment, storage_path=path, storage_filesystem=fs, callbacks=callbacks, verbose=0,
                          failure_config=tune.FailureConfig(max_failures=1))  # fmt: skip


def _fit_point(config: dict) -> None:
    """A Tune trial of a grid sweep: one `train` run, registered under the point's name."""
    import torch
    from ray import tune

    point = config["point"]
    torch.set_num_threads(max(1, int(point["cpus"])))
    cfg = TrainConfig(**point["train"])
    failpoints.hold("sweep-point", cfg.name)  # tests: only the points they list may run
    try:
        result = train(cfg)
        tune.report({"kendall": result.metrics["kendall"], "name": result.name, "registered": True})
    except ModelError as e:  # registered meanwhile by another run of this sweep: the point is done
        if cfg.name not in model_names(cfg.store):
            raise
        log.info("%s: %s", cfg.name, e)
        tune.report({"kendall": float("nan"), "name": cfg.name, "registered": False})


def run_sweep(cfg: SweepConfig, progress: bool = True) -> list[str]:
    """Train every grid point whose model the store lacks, as Tune trials; returns the points' model names."""
    from ray import tune

    names = {cfg.point_name(*pt): pt for pt in cfg.points()}
    have = set(model_names(cfg.base.store))
    todo = [n for n in names if n not in have]
    if not todo:
        return list(names)
    configs = [
        {
            "cpus": cfg.cpus_per_trial,
            "train": {**asdict(cfg.base), "predictor": p, "train_size": n, "seed": s, "name": name},
        }
        for name in todo
        for p, n, s in [names[name]]
    ]
    with _ray_for(cfg):
        tuner = tune.Tuner(
            tune.with_resources(_fit_point, {"cpu": cfg.cpus_per_trial}),
            param_space={"point": tune.grid_search(configs)},
            run_config=_run_config(cfg, f"{cfg.name}-grid", [_progress(len(todo), f"sweep {cfg.name}", progress)]),
        )
        results = tuner.fit()
    errors = [r.error for r in results if r.error is not None]
    missing = [n for n in names if n not in set(model_names(cfg.base.store))]
    if missing:
        raise SweepError(f"sweep {cfg.name}: {len(missing)} points failed ({errors[0] if errors else 'unknown'}); "
                         "rerun the same sweep to finish them")  # fmt: skip
    return list(names)


def _validate_trial(config: dict) -> None:
    """A Tune trial of a search: validation Kendall τ of one hyper-parameter set."""
    import torch
    from ray import tune

    fixed = config["fixed"]
    torch.set_num_threads(max(1, int(fixed["cpus"])))
    hparams = {**fixed["train"]["hparams"], **{k: v for k, v in config.items() if k != "fixed"}}
    cfg = TrainConfig(**{**fixed["train"], "hparams": hparams})
    metrics = validate(cfg, fixed["fraction"])
    tune.report({"val_kendall": metrics["kendall"], "val_spearman": metrics["spearman"]})


def run_hpo(cfg: SweepConfig, progress: bool = True) -> str:
    """Search `cfg.hpo_trials` hyper-parameter sets of one predictor (Optuna's TPE) on validation cells, then
    refit the best on all training cells and register it as `<name>-best`; returns that model's name."""
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    predictor, (size,), (seed,) = cfg.predictors[0], cfg.train_sizes, cfg.seeds
    best_name = f"{cfg.name}-best"
    if best_name in model_names(cfg.base.store):
        return best_name
    base = {**asdict(cfg.base), "predictor": predictor, "train_size": size, "seed": seed, "name": None}
    space = {**_search_spaces()[predictor], "fixed": {"train": base, "cpus": cfg.cpus_per_trial,
                                                       "fraction": cfg.validation_fraction}}  # fmt: skip
    trainable = tune.with_resources(_validate_trial, {"cpu": cfg.cpus_per_trial})
    experiment = f"{cfg.name}-hpo"
    run_config = _run_config(cfg, experiment, [_progress(cfg.hpo_trials, f"hpo {cfg.name}", progress)])
    path, fs = f"{run_config.storage_path}/{experiment}", run_config.storage_filesystem
    with _ray_for(cfg):
        if tune.Tuner.can_restore(path, storage_filesystem=fs):  # an interrupted search: finish what it lacks
            tuner = tune.Tuner.restore(path, trainable, resume_errored=True, param_space=space, storage_filesystem=fs)
        else:
            searcher = OptunaSearch(metric="val_kendall", mode="max", seed=seed)
            concurrent = max(1, int((os.cpu_count() or 1) / cfg.cpus_per_trial))
            tune_config = tune.TuneConfig(search_alg=searcher, num_samples=cfg.hpo_trials, metric="val_kendall",
                                          mode="max", max_concurrent_trials=concurrent)  # fmt: skip
            tuner = tune.Tuner(trainable, param_space=space, tune_config=tune_config, run_config=run_config)
        results = tuner.fit()
    if not any(r.metrics and np.isfinite(r.metrics.get("val_kendall", np.nan)) for r in results):
        # A constant prediction has no rank correlation: too few training cells for the predictor.
        raise SweepError(
            f"search {cfg.name}: no trial finished with a finite validation Kendall tau; if trials failed, rerun "
            "the same search to resume it, if they ran, give it more training cells (`train_sizes`)",
            options=["train_sizes"],
        )
    best = results.get_best_result(metric="val_kendall", mode="max")
    chosen = {k: v for k, v in best.config.items() if k != "fixed"}
    log.info("search %s: best validation kendall %.4f with %s", cfg.name, best.metrics["val_kendall"], chosen)
    train(TrainConfig(**{**base, "hparams": {**cfg.base.hparams, **chosen}, "name": best_name}))
    return best_name
