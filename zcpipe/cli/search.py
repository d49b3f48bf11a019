"""`zcpipe search` (a model's top-k cells) and `zcpipe prune` (TG-NAS's pruning search): two commands;
`search --prune` stays as an alias of `prune`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from zcpipe.cli.common import DEFAULT_STORE, StoreOpt, handled, render
from zcpipe.pipeline import defaults


def search(
    model: Annotated[str, typer.Option(help="model name, or latest: the newest")] = "latest",
    store: StoreOpt = DEFAULT_STORE,
    top_k: Annotated[int, typer.Option(help="how many cells to show")] = defaults.TOP_K,
    space: Annotated[str | None, typer.Option(help="space (default: the model's)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    prune_alias: Annotated[
        bool, typer.Option("--prune", help="the same as `zcpipe prune` (TG-NAS's pruning search)")
    ] = False,
) -> None:
    """The model's best cells, with their labels where known."""
    if prune_alias:
        prune(model=model, store=store, space=space or "nb201")
        return
    import pyarrow as pa

    from zcpipe.pipeline import top_k as run_top_k

    with handled(store):
        rows = run_top_k(str(store), model, top_k, space)
    sys.stdout.write(render(pa.Table.from_pylist(rows), fmt))


def prune(
    model: Annotated[str, typer.Option(help="a graph model (tgnas), or latest: the newest")] = "latest",
    store: StoreOpt = DEFAULT_STORE,
    space: Annotated[str, typer.Option(help="a space with a supernet")] = "nb201",
) -> None:
    """TG-NAS's pruning search: from the supernet, remove the op whose removal the model ranks best, on
    every edge, until one op per edge is left; prints the rounds and the chosen cell's labels."""
    from zcpipe.pipeline import prune_search

    with handled(store):
        result = prune_search(str(store), model, space)
    for n, removed in enumerate(result.rounds, start=1):
        typer.echo(f"round {n}: removed " + ", ".join(op or "-" for op in removed))
    labels = " ".join(f"{k} {v:.2f}" for k, v in sorted(result.labels.items()))
    typer.echo(f"chosen {result.arch} in {result.seconds:.2f} s; {labels or 'no labels for it'}")


def register(app: typer.Typer) -> None:
    app.command()(search)
    app.command()(prune)
