"""`zcpipe sql`: SQL over the store's views, read-only and confined to the store's own files."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from zcpipe.cli.common import DEFAULT_STORE, StoreOpt, check_format, handled, render


def sql(
    query: Annotated[str, typer.Argument(help="SQL over the views archs, layers, runs, shards, labels, ...")],
    store: StoreOpt = DEFAULT_STORE,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    wide: Annotated[bool, typer.Option("--wide", help="table: every column, however wide the terminal")] = False,
    timeout: Annotated[float, typer.Option(help="seconds before the query is interrupted", min=0.001)] = 300.0,
) -> None:
    """Run SQL against the catalog (SELECT and EXPLAIN only; nothing can be written, no file outside the
    store's shards is readable; bounded by --timeout and half the machine's memory)."""
    check_format(fmt, ("table", "csv", "json"))
    from zcpipe.pipeline import store_ops

    with handled(store):
        table = store_ops.sql(store, query, timeout_s=timeout)
    sys.stdout.write(render(table, fmt, wide))


def register(app: typer.Typer) -> None:
    app.command()(sql)
