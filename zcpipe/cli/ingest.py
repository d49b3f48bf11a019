"""`zcpipe ingest`: compute node-wise proxy statistics and commit them to the store.

Its options are `IngestConfig`'s fields (zcpipe/cli/options.py builds them); only `--progress`, which
changes what is printed and nothing computed, is this command's own.
"""

from __future__ import annotations

import inspect
from typing import Any

import typer

from zcpipe.cli.common import handled
from zcpipe.cli.options import config_command
from zcpipe.pipeline import IngestConfig

PROGRESS = inspect.Parameter(
    "progress",
    inspect.Parameter.KEYWORD_ONLY,
    default=typer.Option(True, " /--no-progress", help="no progress bar"),
    annotation=bool,
)


def run(options: dict[str, Any], progress: bool = True) -> None:
    """Compute node-wise proxy statistics and commit them to the store."""
    from zcpipe.pipeline.ingest import ingest as run_ingest

    with handled(options["store"]):
        summary = run_ingest(IngestConfig(**options), progress=progress)
    typer.echo(summary.line(), err=True)
    for note in summary.notes:
        typer.echo(f"warning: {note}", err=True)


def register(app: typer.Typer) -> None:
    app.command("ingest")(config_command(IngestConfig, run, [PROGRESS]))
