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
) -> None:
    """Run SQL against the catalog (SELECT only; no file outside the store is readable)."""
    check_format(fmt, ("table", "csv", "json"))
    from zcpipe.pipeline import store_ops

    with handled(store):
        table = store_ops.sql(store, query)
    sys.stdout.write(render(table, fmt))


def register(app: typer.Typer) -> None:
    app.command()(sql)
