"""`zcpipe report`: the store's proxies, labels and models as one HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zcpipe.cli.common import DEFAULT_STORE, StoreOpt, fail, handled


def report(
    out: Annotated[Path | None, typer.Option(help="HTML file to write (self-contained)")] = None,
    store: StoreOpt = DEFAULT_STORE,
    space: Annotated[str | None, typer.Option(help="space (default: the one with the most statistics)")] = None,
    target: Annotated[str | None, typer.Option(help="label to rank by (default: cifar10_valid if present)")] = None,
    png: Annotated[Path | None, typer.Option(help="also write each figure as a PNG into this folder")] = None,
) -> None:
    """Tables and plots of the store's proxies, labels and models as one HTML page."""
    if out is None and png is None:
        fail("say where to write: --out report.html and/or --png DIR")
    from zcpipe.pipeline import build_report, write_report
    from zcpipe.pipeline.errors import ReportError

    with handled(store):
        try:
            rep = build_report(store, space, target)
        except ReportError as e:
            if "no statistics" in str(e):
                fail(f"{e}; run `zcpipe ingest --store {store} ...` first")
            raise
        figs = write_report(rep, out, png)
    where = " and ".join(str(p) for p in (out, png) if p is not None)
    typer.echo(
        f"report of {rep.space} ({rep.meta.get('archs', 0)} archs, {len(figs)} figures) written to {where}", err=True
    )
    for m in rep.missing:
        typer.echo(f"  missing: {m}", err=True)


def register(app: typer.Typer) -> None:
    app.command()(report)
