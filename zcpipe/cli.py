"""The `zcpipe` command line: thin wrappers over the stages' public functions."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Node-wise zero-cost proxy statistics at scale.")
StoreOpt = Annotated[
    str, typer.Option(help="store: a folder (created if missing) or an fsspec URL such as s3://bucket/prefix")
]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _store_access_errors() -> tuple[type[BaseException], ...]:
    """Failures to reach or be let into a remote store (S3 errors arrive as botocore's or, translated by
    s3fs, as PermissionError)."""
    from botocore.exceptions import BotoCoreError

    return (PermissionError, BotoCoreError)


def _describe(e: BaseException) -> str:
    """One line for the user: the error's first line, with what to check for a store it cannot reach."""
    line = (str(e).splitlines() or [type(e).__name__])[0].strip() or type(e).__name__
    if isinstance(e, FileNotFoundError) and "bucket does not exist" in line:
        line += ": create the bucket first, or fix --store"
    elif isinstance(e, _store_access_errors()):
        line += (
            " (the store could not be reached or refused access: check --store, AWS_ENDPOINT_URL and the "
            "credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
        )
    else:
        line += _hint(e)
    return line


def _hint(e: BaseException) -> str:
    """What to do about an ingest that cannot place or hear from its actors (library messages say what is wrong)."""
    from zcpipe.pipeline.ingest import IngestStalledError
    from zcpipe.pipeline.ray_runtime import ClusterTooSmallError

    if isinstance(e, ClusterTooSmallError):
        return ": lower --gpus, --actors-per-gpu or --workers, or add nodes to the cluster"
    if isinstance(e, IngestStalledError):
        return ": rerun to resume; raise --start-timeout / --stall-timeout if the cluster or the networks are slow"
    return ""


def _user_errors() -> tuple[type[BaseException], ...]:
    import duckdb

    from zcpipe.pipeline import ConfigError
    from zcpipe.pipeline.ingest import IngestStalledError
    from zcpipe.pipeline.ray_runtime import ClusterTooSmallError
    from zcpipe.predictors import FeatureMismatchError, HyperParameterError, UnknownPredictorError
    from zcpipe.predictors.protocol import ProtocolError
    from zcpipe.predictors.text import UnknownOperatorError
    from zcpipe.store import CatalogBusyError, CorruptShardError
    from zcpipe.store.models import ModelError
    from zcpipe.store.remote import LeaseHeldError, LeaseLostError, PublishConflictError
    from zcpipe.store.shard_cache import ShardFetchError
    from zcpipe.store.training import TrainingDataError
    from zcpipe.workers.data import DatasetError
    from zcpipe.workers.proxies import UnknownProxyError
    from zcpipe.workers.spaces import ArchError, UnknownSpaceError

    return (
        ConfigError,
        ClusterTooSmallError,
        IngestStalledError,
        ArchError,
        DatasetError,
        UnknownSpaceError,
        UnknownProxyError,
        CatalogBusyError,
        CorruptShardError,
        FileNotFoundError,
        TrainingDataError,
        ProtocolError,
        UnknownPredictorError,
        HyperParameterError,
        FeatureMismatchError,
        ModelError,
        UnknownOperatorError,
        LeaseHeldError,
        LeaseLostError,
        PublishConflictError,
        ShardFetchError,
        *_store_access_errors(),
        duckdb.Error,
    )


@app.command()
def ingest(
    space: Annotated[str, typer.Option(help="search space, e.g. nb201")],
    store: StoreOpt = "zcpipe-store",
    limit: Annotated[int | None, typer.Option(help="a seeded uniform sample of N architectures")] = None,
    archs: Annotated[Path | None, typer.Option(help="file with one arch key per line")] = None,
    all_archs: Annotated[bool, typer.Option("--all", help="every architecture of a finite space")] = False,
    proxies: Annotated[str, typer.Option(help="comma-separated proxy names")] = "synflow,snip,grad_norm,fisher,grasp",
    data: Annotated[str, typer.Option(help="synthetic | cifar10")] = "synthetic",
    data_root: Annotated[str | None, typer.Option(help="folder with cifar-10-batches-py/, or an .npz pack")] = None,
    batch_size: int = 64,
    seed: int = 0,
    workers: Annotated[int, typer.Option(help="CPU actors (with no --gpus)")] = 1,
    gpus: Annotated[int, typer.Option(help="GPUs; one actor per GPU (times --actors-per-gpu)")] = 0,
    actors_per_gpu: int = 1,
    cpus_per_worker: Annotated[int, typer.Option(help="CPUs (and torch threads) per CPU actor")] = 1,
    ray_address: Annotated[str | None, typer.Option(help="join this Ray cluster instead of starting one")] = None,
    chunk_size: Annotated[int, typer.Option(help="architectures per shard")] = 16,
    micro_batch: Annotated[int | None, typer.Option(help="split the batch into micro-batches of this size")] = None,
    memory_budget_mb: Annotated[float | None, typer.Option(help="split the batch to fit this much memory")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda; cpu with --gpus places actors by GPU")] = "auto",
    retry_failed: Annotated[bool, typer.Option(help="recompute architectures that failed before")] = False,
    compact: Annotated[bool, typer.Option(help="merge small shards when a run leaves many")] = True,
    start_timeout: Annotated[
        float | None, typer.Option(help="seconds to wait for the actors to start [default: 600]")
    ] = None,
    stall_timeout: Annotated[
        float | None, typer.Option(help="seconds to wait for the next chunk before giving up [default: 3600]")
    ] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Compute node-wise proxy statistics and commit them to the store."""
    try:
        from zcpipe.pipeline import IngestConfig
        from zcpipe.pipeline import ingest as run_ingest

        cfg = IngestConfig(
            space=space,
            store=str(store),
            limit=limit,
            archs_file=str(archs) if archs else None,
            all_archs=all_archs,
            proxies=tuple(p.strip() for p in proxies.split(",") if p.strip()),
            data=data,
            data_root=data_root,
            batch_size=batch_size,
            seed=seed,
            workers=workers,
            gpus=gpus,
            actors_per_gpu=actors_per_gpu,
            cpus_per_worker=cpus_per_worker,
            ray_address=ray_address,
            chunk_size=chunk_size,
            micro_batch=micro_batch,
            memory_budget_mb=memory_budget_mb,
            device=device,
            retry_failed=retry_failed,
            compact=compact,
            # Unset, the config's own defaults apply (one place for them).
            **{
                k: v
                for k, v in {"start_timeout_s": start_timeout, "stall_timeout_s": stall_timeout}.items()
                if v is not None
            },
        )
        summary = run_ingest(cfg, progress=progress)
    except _user_errors() as e:
        _fail(_describe(e))
    typer.echo(summary.line(), err=True)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL over the views archs, layers, runs, shards")],
    store: StoreOpt = "zcpipe-store",
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
) -> None:
    """Run SQL against the catalog."""
    if fmt not in ("table", "csv", "json"):
        _fail(f"--format {fmt!r}: choose table, csv or json")
    try:
        from zcpipe.store import Catalog

        table = Catalog(store).query(query)
    except _user_errors() as e:
        _fail(_describe(e))
    sys.stdout.write(_render(table, fmt))


def _render(table, fmt: str) -> str:
    import polars as pl

    df = pl.from_arrow(table)
    if not isinstance(df, pl.DataFrame):
        df = df.to_frame()
    if fmt == "json":
        return json.dumps(df.to_dicts(), default=str) + "\n"
    nested = [c for c, t in df.schema.items() if t.is_nested()]
    if nested:  # CSV and the table printer want flat values
        df = df.with_columns(
            pl.col(c).map_elements(lambda v: json.dumps(v, default=str), return_dtype=pl.String) for c in nested
        )
    if fmt == "csv":
        buf = io.StringIO()
        df.write_csv(buf)
        return buf.getvalue()
    with pl.Config(tbl_rows=100, tbl_cols=30, fmt_str_lengths=90, tbl_width_chars=200):
        return f"{df}\n"


labels_app = typer.Typer(no_args_is_help=True, help="Ground truth: import benchmark results into the catalog.")
app.add_typer(labels_app, name="labels")


@labels_app.command("import")
def labels_import(
    file: Annotated[Path, typer.Argument(help="labels file or (NATS-Bench) folder")],
    space: Annotated[str, typer.Option(help="search space the labels belong to")],
    store: StoreOpt = "zcpipe-store",
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="auto | csv | jsonl | nb201-pth | nats-tss | nds-json | zc-json | nb101-tfrecord"
        ),
    ] = "auto",
    trust_pickle: Annotated[bool, typer.Option(help="allow loading pickle-based files (.pth, NATS)")] = False,
) -> None:
    """Import ground truth; view `labels`, joined with statistics in `archs_labeled`."""
    try:
        from zcpipe.pipeline.labels import LabelFormatError, import_labels
        from zcpipe.pipeline.nb101_tfrecord import TfRecordError

        try:
            n = import_labels(str(store), space, str(file), fmt, trust_pickle)
        except (LabelFormatError, TfRecordError) as e:
            _fail(_describe(e))
    except _user_errors() as e:
        _fail(_describe(e))
    typer.echo(f"imported {n} label rows for {space} from {file}", err=True)


store_app = typer.Typer(no_args_is_help=True, help="Look after a store: register copied shards, describe it.")
app.add_typer(store_app, name="store")


@store_app.command("reconcile")
def store_reconcile(store: StoreOpt = "zcpipe-store") -> None:
    """Register committed shards the catalog lacks (e.g. copied in), verifying every shard's checksums."""
    try:
        from zcpipe.store import Catalog

        catalog = Catalog(store)
        if not catalog.has_shards() and not catalog.exists():
            _fail(f"{store} holds no shards/ folder and no catalog: is it a zcpipe store?")
        with catalog.ingest_lock(), catalog.writer() as w:
            did = w.reconcile(verify_all=True)
        n = catalog.query("SELECT count(*) AS n FROM archs").column("n")[0].as_py()
    except _user_errors() as e:
        _fail(_describe(e))
    typer.echo(
        f"registered {did['orphans_registered']} shards, quarantined {did['quarantined']}, dropped "
        f"{did['missing_dropped']} missing, cleared {did['staging_removed']} staging; archs holds {n} rows",
        err=True,
    )


@store_app.command("compact")
def store_compact(
    store: StoreOpt = "zcpipe-store",
    max_archs: Annotated[int, typer.Option(help="architectures per compacted shard")] = 100_000,
    small: Annotated[int, typer.Option(help="merge shards with fewer architectures than this")] = 1_000,
) -> None:
    """Rewrite many small shards of a configuration as a few large ones (atomically; no ingest may run)."""
    try:
        from zcpipe.store.compact import compact

        summary = compact(store, max_archs=max_archs, small=small)
    except _user_errors() as e:
        _fail(_describe(e))
    typer.echo(summary.line(), err=True)


@store_app.command("info")
def store_info(
    store: StoreOpt = "zcpipe-store",
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Spaces, configurations, row counts, labels, models and size of a store."""
    try:
        from zcpipe.store import Catalog

        info = Catalog(store).info()
    except _user_errors() as e:
        _fail(_describe(e))
    if fmt == "json":
        typer.echo(json.dumps(info, default=str))
        return
    typer.echo(f"store {info['root']}: {info['bytes'] / 2**20:.1f} MiB, {info['models']} models")
    if "local_cache" in info:
        typer.echo(f"  local cache {info['local_cache']}: {info['local_cache_bytes'] / 2**20:.1f} MiB (copies only)")
    for c in info["configs"]:
        typer.echo(
            f"  {c['space']:10s} config {c['config_hash']}: {c['archs']} archs ({c['ok']} ok, {c['partial']} partial, "
            f"{c['failed']} failed) in {c['shards']} shards"
        )
    for lab in info["labels"]:
        typer.echo(f"  {lab['space']:10s} label {lab['label']}: {lab['archs']} archs")


def _hp_option(epochs: int | None, hp: list[str] | None) -> dict:
    from zcpipe.pipeline.training import parse_hparams

    hparams = parse_hparams(hp or [])
    if epochs is not None:
        hparams["epochs"] = epochs
    return hparams


@app.command()
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
    store: StoreOpt = "zcpipe-store",
    seed: int = 0,
    name: Annotated[str | None, typer.Option(help="model name (default: from the options)")] = None,
    epochs: Annotated[int | None, typer.Option(help="training epochs (neural predictors)")] = None,
    config_hash: Annotated[str | None, typer.Option(help="statistics configuration, where a space has several")] = None,
    hp: Annotated[list[str] | None, typer.Option(help="predictor option key=value; repeatable")] = None,
    sweep: Annotated[
        str | None,
        typer.Option(help="run a sweep of this name as Ray Tune trials: every --predictor x --train-sizes x --seeds"),
    ] = None,
    train_sizes: Annotated[str | None, typer.Option(help="sweep: comma-separated train sizes")] = None,
    seeds: Annotated[str | None, typer.Option(help="sweep: comma-separated seeds")] = None,
    hpo: Annotated[int, typer.Option(help="sweep: N Optuna trials on validation cells, then refit the best")] = 0,
    ray_address: Annotated[str | None, typer.Option(help="sweep: run on this Ray cluster")] = None,
    cpus_per_trial: Annotated[float, typer.Option(help="sweep: CPUs per Tune trial")] = 1.0,
    progress: Annotated[bool, typer.Option(help="sweep: show a progress bar")] = True,
) -> None:
    """Fit a predictor on N cells, evaluate it on all the other labeled cells, save and register it.
    With --sweep NAME, run many such fits (or a hyper-parameter search, --hpo N) as Ray Tune trials."""
    if sweep is not None:
        _train_sweep(locals())
        return
    if any([train_sizes, seeds, hpo, ray_address]):
        _fail("--train-sizes, --seeds, --hpo and --ray-address belong to a sweep: add --sweep NAME")
    try:
        from zcpipe.pipeline.training import TrainConfig
        from zcpipe.pipeline.training import train as run_train

        cfg = TrainConfig(
            store=str(store),
            space=space,
            predictor=predictor,
            target=target,
            train_size=train_size,
            seed=seed,
            name=name,
            config_hash=config_hash,
            hparams=_hp_option(epochs, hp),
            train_spaces=_names(train_spaces),
        )
        result = run_train(cfg)
    except _user_errors() as e:
        _fail(_describe(e))
    m = result.metrics
    typer.echo(f"model {result.name} saved in {result.artifact}")
    if m["n"]:
        typer.echo(
            f"pearson {m['pearson']:.4f} precision@10% {m['precision@0.1']:.3f} kendall@10% {m['kendall@0.1']:.4f} "
            f"fit {result.fit_cpu_seconds:.1f} CPU s"
        )
    typer.echo(result.summary())


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="model name (see `zcpipe sql 'SELECT * FROM models'`)")],
    store: StoreOpt = "zcpipe-store",
    target: Annotated[str | None, typer.Option(help="label (default: the one it was trained on)")] = None,
    space: Annotated[str | None, typer.Option(help="space (default: the one it was trained on)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Rank metrics of a saved model on every labeled cell it did not train on."""
    if fmt not in ("table", "json"):
        _fail(f"--format {fmt!r}: choose table or json")
    try:
        from zcpipe.pipeline.training import evaluate as run_evaluate

        result = run_evaluate(str(store), model, target, space)
    except _user_errors() as e:
        _fail(_describe(e))
    if fmt == "json":
        typer.echo(json.dumps(result))
    else:
        typer.echo("\n".join(f"{k:14s} {v:.4f}" if isinstance(v, float) else f"{k:14s} {v}" for k, v in result.items()))


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip()) if text else ()


def _ints(text: str | None, default: list) -> list:
    if text is None:
        return default
    try:
        return [None if t.strip() == "all" else int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        _fail(f"{text!r}: give comma-separated whole numbers, e.g. 100,200")


def _train_sweep(o: dict) -> None:
    try:
        from zcpipe.pipeline.sweep import SweepConfig, run_hpo, run_sweep
        from zcpipe.pipeline.training import TrainConfig

        predictors = _names(o["predictor"])
        sizes = tuple(_ints(o["train_sizes"], [o["train_size"]]))
        base = TrainConfig(
            store=o["store"],
            space=o["space"],
            predictor=predictors[0],
            target=o["target"],
            train_size=sizes[0],
            config_hash=o["config_hash"],
            hparams=_hp_option(o["epochs"], o["hp"]),
            train_spaces=_names(o["train_spaces"]),
        )
        cfg = SweepConfig(
            base=base,
            name=o["sweep"],
            predictors=predictors,
            train_sizes=sizes,
            seeds=tuple(_ints(o["seeds"], [o["seed"]])),
            hpo_trials=o["hpo"],
            cpus_per_trial=o["cpus_per_trial"],
            ray_address=o["ray_address"],
        )
        names = [run_hpo(cfg, o["progress"])] if cfg.hpo_trials else run_sweep(cfg, o["progress"])
    except _user_errors() as e:
        _fail(_describe(e))
    typer.echo(f"sweep {o['sweep']}: {len(names)} models; SELECT * FROM models WHERE name LIKE '{o['sweep']}-%'")


@app.command()
def predict(
    model: Annotated[str, typer.Option(help="model name")],
    store: StoreOpt = "zcpipe-store",
    space: Annotated[str | None, typer.Option(help="space (default: the model's)")] = None,
) -> None:
    """Score every cell with statistics; the scores go to view `predictions` in one transaction."""
    try:
        from zcpipe.pipeline.training import predict as run_predict

        n = run_predict(str(store), model, space)
    except _user_errors() as e:
        _fail(_describe(e))
    typer.echo(f"scored {n} cells with {model}; SELECT * FROM predictions WHERE model = '{model}'", err=True)


@app.command()
def search(
    model: Annotated[str, typer.Option(help="model name")],
    store: StoreOpt = "zcpipe-store",
    top_k: Annotated[int, typer.Option(help="how many cells to show")] = 10,
    space: Annotated[str | None, typer.Option(help="space (default: the model's)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    prune: Annotated[
        bool,
        typer.Option("--prune", help="TG-NAS's pruning search on the NB201 supernet instead of ranking every cell"),
    ] = False,
) -> None:
    """The model's best cells, with their labels where known."""
    try:
        import pyarrow as pa

        from zcpipe.pipeline.training import search as run_search

        if prune:
            from zcpipe.pipeline.prune import prune_search

            result = prune_search(str(store), model, space or "nb201")
            for n, removed in enumerate(result.rounds, start=1):
                typer.echo(f"round {n}: removed " + ", ".join(op or "-" for op in removed))
            labels = " ".join(f"{k} {v:.2f}" for k, v in sorted(result.labels.items()))
            typer.echo(f"chosen {result.arch} in {result.seconds:.2f} s; {labels or 'no labels for it'}")
            return
        rows = run_search(str(store), model, top_k, space)
    except _user_errors() as e:
        _fail(_describe(e))
    sys.stdout.write(_render(pa.Table.from_pylist(rows), fmt))


@app.command()
def report(
    out: Annotated[Path | None, typer.Option(help="HTML file to write (self-contained)")] = None,
    store: StoreOpt = "zcpipe-store",
    space: Annotated[str | None, typer.Option(help="space (default: the one with the most statistics)")] = None,
    target: Annotated[str | None, typer.Option(help="label to rank by (default: cifar10_valid if present)")] = None,
    png: Annotated[Path | None, typer.Option(help="also write each figure as a PNG into this folder")] = None,
) -> None:
    """Tables and plots of the store's proxies, labels and models as one HTML page."""
    if out is None and png is None:
        _fail("say where to write: --out report.html and/or --png DIR")
    try:
        from zcpipe.pipeline.report import ReportError, build_report
        from zcpipe.pipeline.report_page import write_report

        try:
            rep = build_report(store, space, target)
        except ReportError as e:
            _fail(_describe(e))
        figs = write_report(rep, out, png)
    except _user_errors() as e:
        _fail(_describe(e))
    where = " and ".join(str(p) for p in (out, png) if p is not None)
    typer.echo(
        f"report of {rep.space} ({rep.meta.get('archs', 0)} archs, {len(figs)} figures) written to {where}", err=True
    )
    for m in rep.missing:
        typer.echo(f"  missing: {m}", err=True)


@app.command("predictors")
def list_predictors() -> None:
    """List the registered predictors and their options."""
    from zcpipe.predictors import available_predictors

    for info in available_predictors():
        name = "proxy:<name>" if info.name == "proxy" else info.name
        typer.echo(f"{name:18s} {info.summary}")
        if info.cls.defaults and info.name != "proxy":
            opts = " ".join(f"{k}={v}" for k, v in info.cls.defaults.items())
            typer.echo(f"{'':18s} options (--hp key=value): {opts}")


@app.command()
def spaces() -> None:
    """List the registered search spaces."""
    from zcpipe.workers.spaces import available_spaces

    typer.echo("\n".join(available_spaces()))


@app.command("proxies")
def list_proxies() -> None:
    """List the registered proxies with their scope and pass."""
    from zcpipe.workers.proxies import all_proxies

    for name, p in sorted(all_proxies().items()):
        typer.echo(f"{name:10s} {p.scope:6s} {p.pass_name}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
