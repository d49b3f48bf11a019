"""`zcpipe ingest`: compute node-wise proxy statistics and commit them to the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zcpipe.cli.common import DEFAULT_STORE, StoreOpt, handled, names
from zcpipe.pipeline import defaults


def ingest(
    space: Annotated[
        str, typer.Option(help="search space, e.g. nb201 (`zcpipe spaces`); nb301 is NAS-Bench-301's network")
    ],
    store: StoreOpt = DEFAULT_STORE,
    limit: Annotated[int | None, typer.Option(help="a seeded uniform sample of N architectures")] = None,
    archs: Annotated[Path | None, typer.Option(help="file with one arch key per line")] = None,
    all_archs: Annotated[bool, typer.Option("--all", help="every architecture of a finite space")] = False,
    proxies: Annotated[str, typer.Option(help="comma-separated proxy names")] = ",".join(defaults.PROXIES),
    data: Annotated[
        str, typer.Option(help="cifar10 | cifar100 | imagenet16-120 | synthetic-cifar10 | npz | synthetic")
    ] = defaults.DATA,
    data_root: Annotated[
        str | None, typer.Option(help="the dataset's official folder, or an .npz pack (see docs/ingest.md)")
    ] = None,
    space_opt: Annotated[
        list[str] | None, typer.Option(help="space option key=value, e.g. width=32; repeatable (`zcpipe spaces`)")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="images in the minibatch each proxy scores")] = defaults.BATCH_SIZE,
    seed: int = defaults.SEED,
    workers: Annotated[int, typer.Option(help="CPU actors (with no --gpus)")] = defaults.WORKERS,
    gpus: Annotated[int, typer.Option(help="GPUs; one actor per GPU (times --actors-per-gpu)")] = 0,
    actors_per_gpu: Annotated[
        int, typer.Option(help="actors sharing each GPU (with --gpus; they overlap only under CUDA MPS)")
    ] = defaults.ACTORS_PER_GPU,
    cpus_per_worker: Annotated[
        int, typer.Option(help="CPUs (and torch threads) per CPU actor")
    ] = defaults.CPUS_PER_WORKER,
    ray_address: Annotated[str | None, typer.Option(help="join this Ray cluster instead of starting one")] = None,
    chunk_size: Annotated[int, typer.Option(help="architectures per shard")] = defaults.CHUNK_SIZE,
    micro_batch: Annotated[int | None, typer.Option(help="split the batch into micro-batches of this size")] = None,
    memory_budget_mb: Annotated[float | None, typer.Option(help="split the batch to fit this much memory")] = None,
    device: Annotated[
        str, typer.Option(help="auto | cpu | cuda; cpu with --gpus places actors by GPU")
    ] = defaults.DEVICE,
    # One-sided flags (no --no-retry-failed, no --compact): a second name per flag widens the option column
    # of --help until long names are cut at 80 columns.
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="recompute architectures that failed before")
    ] = False,
    compact: Annotated[bool, typer.Option(" /--no-compact", help="do not merge small shards at the end")] = True,
    start_timeout: Annotated[
        float, typer.Option(help="seconds to wait for the actors to start")
    ] = defaults.START_TIMEOUT_S,
    stall_timeout: Annotated[
        float, typer.Option(help="seconds to wait for the next chunk before giving up")
    ] = defaults.STALL_TIMEOUT_S,
    progress: Annotated[bool, typer.Option(" /--no-progress", help="no progress bar")] = True,
) -> None:
    """Compute node-wise proxy statistics and commit them to the store."""
    from zcpipe.pipeline import IngestConfig, parse_pairs
    from zcpipe.pipeline.ingest import ingest as run_ingest

    with handled(store):
        cfg = IngestConfig(
            space_params=parse_pairs(space_opt or [], "space_params", "width=32"),
            space=space,
            store=str(store),
            limit=limit,
            archs_file=str(archs) if archs else None,
            all_archs=all_archs,
            proxies=names(proxies),
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
            start_timeout_s=start_timeout,
            stall_timeout_s=stall_timeout,
        )
        summary = run_ingest(cfg, progress=progress)
    typer.echo(summary.line(), err=True)


def register(app: typer.Typer) -> None:
    app.command()(ingest)
