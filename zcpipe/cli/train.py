"""`zcpipe train | evaluate | predict`: fit predictors (one, a sweep, or a search), test and apply them."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from zcpipe.cli.common import DEFAULT_STORE, StoreOpt, check_format, fail, handled, names
from zcpipe.pipeline import defaults


def _hparams(epochs: int | None, hp: list[str] | None) -> dict:
    from zcpipe.pipeline import parse_hparams

    hparams = parse_hparams(hp or [])
    if epochs is not None:
        hparams["epochs"] = epochs
    return hparams


def _ints(text: str | None, default: list) -> list:
    if text is None:
        return default
    try:
        return [None if t.strip() == "all" else int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        fail(f"{text!r}: give comma-separated whole numbers, e.g. 100,200")


def train(
    predictor: Annotated[
        str, typer.Option(help="see `zcpipe predictors`; proxy:<name> for one proxy; comma-separated with --sweep")
    ],
    target: Annotated[str, typer.Option(help="label to rank by, e.g. cifar10_valid")],
    space: Annotated[
        str | None, typer.Option(help="space to train on and test on (the test space, with --train-spaces)")
    ] = None,
    train_size: Annotated[
        int | None, typer.Option(help="training cells, drawn with --seed; every other cell tests (default: all)")
    ] = None,
    train_spaces: Annotated[
        str | None, typer.Option(help="graph predictors: comma-separated spaces whose labeled graphs train it")
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    seed: int = defaults.SEED,
    name: Annotated[str | None, typer.Option(help="model name (default: from the options)")] = None,
    epochs: Annotated[int | None, typer.Option(help="training epochs (neural predictors)")] = None,
    config_hash: Annotated[
        str | None,
        typer.Option(help="statistics configuration, where a space has several (comma-separated: side by side)"),
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="the dataset whose statistics to read, where the space has several tasks")
    ] = None,
    hp: Annotated[list[str] | None, typer.Option(help="predictor option key=value; repeatable")] = None,
    unique: Annotated[
        bool, typer.Option(help="one cell per isomorphism class (NB201: the benchmark's 6,466 unique cells)")
    ] = False,
    sweep: Annotated[
        str | None,
        typer.Option(help="run a sweep of this name as Ray Tune trials: every --predictor x --train-sizes x --seeds"),
    ] = None,
    train_sizes: Annotated[str | None, typer.Option(help="sweep: comma-separated train sizes")] = None,
    seeds: Annotated[str | None, typer.Option(help="sweep: comma-separated seeds")] = None,
    hpo: Annotated[int, typer.Option(help="sweep: N Optuna trials on validation cells, then refit the best")] = 0,
    ray_address: Annotated[str | None, typer.Option(help="sweep: run on this Ray cluster")] = None,
    cpus_per_trial: Annotated[float, typer.Option(help="sweep: CPUs per Tune trial")] = defaults.CPUS_PER_TRIAL,
    progress: Annotated[bool, typer.Option(help="sweep: show a progress bar")] = True,
) -> None:
    """Fit a predictor on N cells, evaluate it on all the other labeled cells, save and register it.
    With --sweep NAME, run many such fits (or a hyper-parameter search, --hpo N) as Ray Tune trials."""
    from zcpipe.pipeline import TrainConfig

    if sweep is None and any([train_sizes, seeds, hpo, ray_address]):
        fail("--train-sizes, --seeds, --hpo and --ray-address belong to a sweep: add --sweep NAME")
    with handled(store):
        predictors = names(predictor) if sweep is not None else (predictor,)
        sizes = tuple(_ints(train_sizes, [train_size]))
        cfg = TrainConfig(
            store=str(store),
            space=space,
            predictor=predictors[0],
            target=target,
            train_size=sizes[0],
            seed=seed,
            name=name if sweep is None else None,
            config_hash=config_hash,
            data=data,
            hparams=_hparams(epochs, hp),
            train_spaces=names(train_spaces),
            unique=unique,
        )
        if sweep is not None:
            _sweep(cfg, sweep, predictors, sizes, tuple(_ints(seeds, [seed])), hpo, cpus_per_trial, ray_address,
                   progress)  # fmt: skip
            return
        from zcpipe.pipeline import train as run_train

        result = run_train(cfg)
    m = result.metrics
    typer.echo(f"model {result.name} saved in {result.artifact}")
    typer.echo("wall s: " + ", ".join(f"{k} {v:.1f}" for k, v in result.phases.items()), err=True)
    if m["n"]:
        typer.echo(
            f"pearson {m['pearson']:.4f} precision@10% {m['precision@0.1']:.3f} kendall@10% {m['kendall@0.1']:.4f} "
            f"fit {result.fit_cpu_seconds:.1f} CPU s"
        )
    if not m["n"]:
        typer.echo(f"no held-out cells: `zcpipe evaluate --model {result.name} --space SPACE` tests it elsewhere")
        return
    typer.echo(result.summary())


def _sweep(base, name, predictors, sizes, seeds, hpo, cpus_per_trial, ray_address, progress) -> None:
    from zcpipe.pipeline import SweepConfig, run_hpo, run_sweep

    cfg = SweepConfig(
        base=base,
        name=name,
        predictors=predictors,
        train_sizes=sizes,
        seeds=seeds,
        hpo_trials=hpo,
        cpus_per_trial=cpus_per_trial,
        ray_address=ray_address,
    )
    models = [run_hpo(cfg, progress)] if cfg.hpo_trials else run_sweep(cfg, progress)
    typer.echo(f"sweep {name}: {len(models)} models; SELECT * FROM models WHERE name LIKE '{name}-%'")


def evaluate(
    model: Annotated[
        str, typer.Option(help="model name (see `zcpipe sql 'SELECT * FROM models'`), or latest: the newest")
    ] = "latest",
    store: StoreOpt = DEFAULT_STORE,
    target: Annotated[str | None, typer.Option(help="label (default: the one it was trained on)")] = None,
    space: Annotated[str | None, typer.Option(help="space (default: the one it was trained on)")] = None,
    data: Annotated[
        str | None, typer.Option(help="evaluate on this dataset's statistics (another task), not its own")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Rank metrics of a saved model on every labeled cell it did not train on."""
    check_format(fmt, ("table", "json"))
    from zcpipe.pipeline import evaluate as run_evaluate

    with handled(store):
        result = run_evaluate(str(store), model, target, space, data)
    if fmt == "json":
        typer.echo(json.dumps(result))
    else:
        shown = {k: v for k, v in result.items() if v is not None}  # a graph model reads no statistics
        typer.echo("\n".join(f"{k:14s} {v:.4f}" if isinstance(v, float) else f"{k:14s} {v}" for k, v in shown.items()))


def predict(
    model: Annotated[str, typer.Option(help="model name, or latest: the newest")] = "latest",
    store: StoreOpt = DEFAULT_STORE,
    space: Annotated[str | None, typer.Option(help="space (default: the model's)")] = None,
    data: Annotated[
        str | None, typer.Option(help="score this dataset's statistics (another task), not its own")
    ] = None,
) -> None:
    """Score every cell with statistics; the scores go to view `predictions` in one transaction."""
    from zcpipe.pipeline import predict as run_predict

    with handled(store):
        n = run_predict(str(store), model, space, data)
    newest = "(SELECT name FROM models ORDER BY created_at DESC LIMIT 1)"
    which = f"model = '{model}'" if model != "latest" else f"model = {newest}"
    typer.echo(f"scored {n} cells with {model}; SELECT * FROM predictions WHERE {which}", err=True)


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(evaluate)
    app.command()(predict)
