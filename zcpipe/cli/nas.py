"""`zcpipe nas`: search loops (random, REA, local search, BANANAS) over the store's cells, with proxies as
features, warm starts and guided moves; each query reads a benchmark label (a simulated, tabular NAS run)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from zcpipe.cli.common import DEFAULT_STORE, StoreOpt, check_format, handled, names, render


def nas(
    target: Annotated[str, typer.Option(help="label a query returns, e.g. cifar10_valid")],
    store: StoreOpt = DEFAULT_STORE,
    space: Annotated[str, typer.Option(help="search space (its stored cells with statistics and labels)")] = "nb201",
    algo: Annotated[str, typer.Option(help="random | rea | local | bananas; comma-separated to compare")] = "bananas",
    budget: Annotated[int, typer.Option(help="queries per seed (a query trains one cell)", min=1)] = 300,
    seeds: Annotated[int, typer.Option(help="independent runs, seeds 0..N-1", min=1)] = 20,
    features: Annotated[
        str, typer.Option(help="BANANAS's predictor inputs: onehot, zc, graph, nodewise (comma-separated)")
    ] = "onehot",
    warm_start: Annotated[
        str | None, typer.Option(help="zc: first queries are the top cells by the zero-shot vote (zc:PROXY: by one)")
    ] = None,
    guided: Annotated[bool, typer.Option("--guided", help="rea/local: moves ranked by the ZC score")] = False,
    name: Annotated[str | None, typer.Option(help="run name (default: from the options); reuse it to resume")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    progress: Annotated[bool, typer.Option(" /--no-progress", help="no progress bar")] = True,
) -> None:
    """Run NAS loops on the store's cells; resumable; history in views nas_runs and nas_queries."""
    check_format(fmt, ("table", "csv", "json"))
    import pyarrow as pa

    from zcpipe.pipeline.nas import NasConfig, run_nas
    from zcpipe.pipeline.nas.pool import load_pool

    rows = []
    with handled(store):
        algos = names(algo)
        # Only BANANAS reads features: the other loops run (and are named) without them.
        configs = [NasConfig(store, space, target, a, budget, seeds, names(features) if a == "bananas" else ("onehot",),
                             warm_start, guided and (a in ("rea", "local") or len(algos) == 1),
                             name if len(algos) == 1 else None)
                   for a in algos]  # fmt: skip
        pool = load_pool(store, space, target, names(features))
        for cfg in configs:
            result = run_nas(cfg, progress=progress, pool=pool)
            rows.append({"run": result.run_id, "algo": cfg.algo, **result.summary.row()})
            if result.resumed_queries:
                typer.echo(f"{result.run_id}: resumed after {result.resumed_queries} recorded queries", err=True)
        for note in result.notes:
            typer.echo(f"note: {note}", err=True)
    sys.stdout.write(render(pa.Table.from_pylist(rows), fmt))


def register(app: typer.Typer) -> None:
    app.command()(nas)
