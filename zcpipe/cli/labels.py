"""`zcpipe labels import`: ground truth from benchmark files into the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zcpipe.cli.common import DEFAULT_STORE, StoreOpt, handled

labels_app = typer.Typer(no_args_is_help=True, help="Ground truth: import benchmark results into the catalog.")


@labels_app.command("import")
def labels_import(
    file: Annotated[Path, typer.Argument(help="labels file or (NATS-Bench) folder")],
    space: Annotated[str, typer.Option(help="search space the labels belong to")],
    store: StoreOpt = DEFAULT_STORE,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="auto | csv | jsonl | nats-tss | nb101-tfrecord | nb201-pth | nds-json | zc-json"
        ),
    ] = "auto",
    trust_pickle: Annotated[bool, typer.Option(help="allow loading pickle-based files (.pth, NATS)")] = False,
) -> None:
    """Import ground truth; view `labels`, joined with statistics in `archs_labeled`."""
    from zcpipe.pipeline import import_labels

    with handled(store):
        report = import_labels(str(store), space, str(file), fmt, trust_pickle)
    typer.echo(report.line(space, str(file)), err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(labels_app, name="labels")
