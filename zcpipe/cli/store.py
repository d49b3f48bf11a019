"""`zcpipe store reconcile|compact|info`: look after a store."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from zcpipe.cli.common import DEFAULT_STORE, StoreOpt, check_format, handled

store_app = typer.Typer(no_args_is_help=True, help="Look after a store: register copied shards, describe it.")


@store_app.command("reconcile")
def store_reconcile(
    store: StoreOpt = DEFAULT_STORE,
    rebuild: Annotated[
        bool, typer.Option(help="set the catalog aside (e.g. damaged) and build a new one from the store alone")
    ] = False,
) -> None:
    """Register committed shards the catalog lacks (e.g. copied in), verifying every shard's checksums, and
    restore labels, models, predictions and runs the catalog lacks from the store's own records."""
    from zcpipe.pipeline import store_ops

    with handled(store):
        did, n = store_ops.reconcile(store, rebuild=rebuild)
    if did.get("set_aside"):
        typer.echo(f"set the old catalog aside as {did['set_aside']}", err=True)
    kinds = {"labels_restored": "label rows", "models_restored": "models", "predictions_restored": "predictions",
             "runs_restored": "runs"}  # fmt: skip
    restored = ", ".join(f"{did[k]} {what}" for k, what in kinds.items() if did.get(k))
    typer.echo(
        f"registered {did['orphans_registered']} shards, quarantined {did['quarantined']}, dropped "
        f"{did['missing_dropped']} missing, cleared {did['staging_removed']} staging"
        + (f"; restored {restored} from the store's records" if restored else "")
        + (f"; {did['records_unreadable']} records unreadable (see the log)" if did.get("records_unreadable") else "")
        + f"; archs holds {n} rows",
        err=True,
    )


@store_app.command("compact")
def store_compact(
    store: StoreOpt = DEFAULT_STORE,
    max_archs: Annotated[int, typer.Option(help="architectures per compacted shard")] = 100_000,
    small: Annotated[int, typer.Option(help="merge shards with fewer architectures than this")] = 1_000,
) -> None:
    """Rewrite many small shards of a configuration as a few large ones (atomically; no ingest may run)."""
    from zcpipe.pipeline import store_ops

    with handled(store):
        summary = store_ops.compact_store(store, max_archs=max_archs, small=small)
    typer.echo(summary.line(), err=True)


@store_app.command("info")
def store_info(
    store: StoreOpt = DEFAULT_STORE,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Spaces, configurations, row counts, labels, models and size of a store."""
    check_format(fmt, ("table", "json"))
    from zcpipe.pipeline import store_ops

    with handled(store):
        info = store_ops.info(store)
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


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")
