"""The `zcpipe` command line: one module per command group, each a thin wrapper over `zcpipe.pipeline`.

ingest.py     ingest                     query.py   sql
labels.py     labels import              store.py   store reconcile | compact | info
train.py      train (sweeps), evaluate, predict
search.py     search (top-k), prune      report.py  report
nas.py        nas (search loops)
catalogue.py  spaces, proxies, predictors
common.py     --store, one-line errors with the fix, output tables
"""

from __future__ import annotations

import typer

from zcpipe.cli import catalogue, ingest, labels, nas, query, report, search, store, train

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Node-wise zero-cost proxy statistics at scale.")
for _group in (ingest, query, labels, store, train, search, nas, report, catalogue):
    _group.register(app)


def main() -> None:
    """The console script's entry point."""
    app()


__all__ = ["app", "main"]
