"""The ingest driver: plan, skip what is committed, fan chunks out to actors, commit shards."""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

import ray
from tqdm import tqdm

from zcpipe import settings
from zcpipe.pipeline.errors import ChunkLostError, IngestStalledError
from zcpipe.pipeline.graph_rows import graph_rows
from zcpipe.pipeline.ingest.actors import remote_actor_class
from zcpipe.pipeline.ingest.config import IngestConfig, config_hash
from zcpipe.pipeline.ingest.plan import plan_archs
from zcpipe.pipeline.ingest.runtime import actor_plan, check_fits, ensure_ray
from zcpipe.store import Catalog, CatalogBusyError
from zcpipe.store.compact import compact, small_shards
from zcpipe.store.layout import normalize_store
from zcpipe.store.remote import LeaseHeldError
from zcpipe.workers.data import DataSpec, batch_sha256, load_batch
from zcpipe.workers.spaces import get_space

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    """What a run did: planned, done, skipped (committed before), failed, and the seconds it took."""

    run_id: str
    config_hash: str
    planned: int
    done: int
    skipped: int
    failed: int
    seconds: float
    worker_seconds: float
    compacted: int = 0
    space: str = ""  # the space the rows are stored under (an alias's own space)
    notes: list[str] = field(default_factory=list)  # warnings about how the run was set up

    @property
    def seconds_per_arch(self) -> float:
        return self.worker_seconds / self.done if self.done else float("nan")

    def line(self) -> str:
        return (
            f"run {self.run_id}: {self.done} done, {self.skipped} skipped (already committed), "
            f"{self.failed} failed, of {self.planned} planned; {self.seconds:.1f}s wall"
            + (f", {self.seconds_per_arch:.2f}s per arch in workers" if self.done else "")
            + f"; config_hash {self.config_hash}"
            + (f"; merged {self.compacted} small shards" if self.compacted else "")
        )


MAX_CHUNK_ATTEMPTS = 4


def _wait_started(actors: list, timeout_s: float) -> None:
    """Return once every actor has run its constructor (or failed in it), or raise after `timeout_s`."""
    refs = [a.pid.remote() for a in actors]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
    if len(ready) < len(refs):
        raise IngestStalledError(
            f"{len(refs) - len(ready)} of {len(refs)} actors did not start within {timeout_s:g} s "
            "(the cluster is busy or short of the resources they ask for)"
        )


def physical_memory_mb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


AUTO_COMPACT_SHARDS = settings.AUTO_COMPACT_SHARDS


def ingest(cfg: IngestConfig, progress: bool = True) -> IngestSummary:
    """Run an ingest under the store's ingest lock: compute what is not committed yet, commit it shard by shard,
    and merge small shards at the end if it left many. Resumable: a rerun skips what is committed."""
    prepared = _prepare(cfg)  # every input checked before the store folder (or its lock) is created
    with Catalog(normalize_store(cfg.store)).ingest_lock():
        summary = _ingest(cfg, prepared, progress)
    # A full run leaves ~1,000 shards of 16 archs, and every query opens every file: merge them.
    many = summary.done and small_shards(cfg.store, summary.space, summary.config_hash) >= AUTO_COMPACT_SHARDS
    if cfg.compact and many:
        try:
            compacted = compact(normalize_store(cfg.store))
            summary.compacted = compacted.shards_before
        except (CatalogBusyError, LeaseHeldError) as e:  # another ingest started meanwhile: it can compact
            log.warning("skipped compaction: %s", e)
    return summary


@dataclass(frozen=True)
class _Prepared:
    """What an ingest needs before it touches the store: the space, its plan, the batch and the config hash."""

    space: object
    archs: dict[str, str]
    data: DataSpec
    batch_sha: str
    values: dict
    chash: str


def _prepare(cfg: IngestConfig) -> _Prepared:
    space = get_space(cfg.space, **cfg.space_params)
    archs = plan_archs(space, cfg)
    data = cfg.data_spec
    images, labels, num_classes = load_batch(data)
    batch_sha = batch_sha256(images, labels)
    values = cfg.value_config(batch_sha, num_classes, tuple(images.shape[1:]))
    return _Prepared(space, archs, data, batch_sha, values, config_hash(values))


def _ingest(cfg: IngestConfig, prepared: _Prepared, progress: bool) -> IngestSummary:
    t0 = time.perf_counter()
    space, archs = prepared.space, prepared.archs
    values, chash = prepared.values, prepared.chash
    store = normalize_store(cfg.store)
    catalog = Catalog(store)
    run_id = new_run_id()
    with catalog.writer() as w:
        w.reconcile()
        committed = w.committed_archs(space.name, chash)
    if cfg.retry_failed and committed:
        committed -= catalog.failed_archs(space.name, chash)
    with catalog.writer() as w:
        w.add_graphs(graph_rows(space, archs.items()))  # a function of the key: no need to wait for statistics
        w.start_run(run_id, space.name, chash, {"options": cfg.to_dict(), "values": values}, len(archs), cfg.data)
    todo = [(key, spec) for key, spec in archs.items() if key not in committed]
    summary = IngestSummary(run_id, chash, len(archs), 0, len(archs) - len(todo), 0, 0.0, 0.0, space=space.name)
    # With --retry-failed the skipped count excludes the failed architectures being recomputed.
    state = "interrupted"
    started_ray = False
    try:
        if todo:
            started_ray = ensure_ray(cfg)
            _run(_Run(cfg, prepared, todo, store, run_id, catalog, summary, progress))
        state = "finished"
    finally:
        summary.seconds = time.perf_counter() - t0
        with catalog.writer() as w:
            w.finish_run(run_id, state, summary.done, summary.skipped, summary.failed)
        if started_ray:
            ray.shutdown()
    return summary


@dataclass
class _Run:
    """One run's state, as the fan-out needs it."""

    cfg: IngestConfig
    prepared: _Prepared
    todo: list[tuple[str, str]]
    store: str
    run_id: str
    catalog: Catalog
    summary: IngestSummary
    progress: bool


def _start_actors(r: _Run) -> list:
    """The run's actors, started and sized to the work: no more than there are architectures to do."""
    cfg = r.cfg
    n_actors, resources, device, threads = actor_plan(cfg, len(r.todo))
    budget = cfg.memory_budget_mb
    if budget is None and device == "cpu" and cfg.ray_address is None:
        # CPU actors share this machine's memory: give each a fair part, so big networks
        # (NB101 at batch 64 needs ~9 GiB for GraSP's double backward) split instead of swapping.
        budget = 0.6 * physical_memory_mb() / n_actors
    check_fits(n_actors, resources)  # an actor Ray cannot place would be waited on forever
    actor_cls = remote_actor_class()
    wcfg, p = cfg.worker_config(device, threads, budget), r.prepared
    actors = [
        actor_cls.options(**resources).remote(wcfg, p.data, p.batch_sha, r.store, cfg.all_proxies)
        for _ in range(n_actors)
    ]
    _wait_started(actors, cfg.start_timeout_s)
    if cfg.actors_per_gpu > 1 and device == "cuda":
        # Each actor looks on its own node (the driver may sit on a node without GPUs).
        notes = ray.get([a.sharing_note.remote(cfg.actors_per_gpu) for a in actors], timeout=cfg.start_timeout_s)
        for note in dict.fromkeys(n for n in notes if n):
            log.warning("warning: %s", note)
            r.summary.notes.append(note)
    return actors


def _run(r: _Run) -> None:
    cfg, todo, run_id, chash, summary = r.cfg, r.todo, r.run_id, r.prepared.chash, r.summary
    actors = _start_actors(r)
    if cfg.batched_archs != 1:
        # Chunks of neighbours in spec order: the architectures of a batched pass then share their first
        # edges, and an edge where a whole pass chose one op moves no blocks (docs/proxies.md).
        todo = sorted(todo, key=lambda item: item[1])
    # At most --chunk-size per shard, but small enough that every actor gets a few chunks.
    size = max(1, min(cfg.chunk_archs, math.ceil(len(todo) / (3 * len(actors)))))
    chunks = deque((f"{run_id}-{i:05d}", todo[s : s + size]) for i, s in enumerate(range(0, len(todo), size)))
    pending: dict[ray.ObjectRef, tuple[object, tuple]] = {}
    attempts: dict[str, int] = {}
    live = list(actors)

    def submit(actor) -> None:
        if chunks:
            chunk = chunks.popleft()
            pending[actor.run_chunk.remote(run_id, chunk[0], chash, chunk[1])] = (actor, chunk)

    for actor in actors:  # two chunks per actor, so one is queued while the driver commits
        submit(actor)
        submit(actor)
    bar = tqdm(total=len(todo), unit="arch", desc=f"ingest {cfg.space}", disable=not r.progress, dynamic_ncols=True)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=cfg.stall_timeout_s)
            if not ready:
                raise IngestStalledError(
                    f"no chunk finished in {cfg.stall_timeout_s:g} s ({len(pending)} in flight on {len(live)} "
                    "actor(s)); committed shards are kept, and a rerun resumes"
                )
            actor, chunk = pending.pop(ready[0])
            try:
                manifest, failed, worker_seconds = ray.get(ready[0])
            except (ray.exceptions.ActorUnavailableError, ray.exceptions.RayActorError) as e:
                # The actor's node or process died with this chunk in flight. Nothing of it was committed
                # (only the driver commits), so run it again: on the same actor once Ray has restarted it,
                # or on another one if it is gone for good.
                attempts[chunk[0]] = attempts.get(chunk[0], 0) + 1
                if attempts[chunk[0]] > MAX_CHUNK_ATTEMPTS:
                    raise ChunkLostError(
                        f"chunk {chunk[0]} lost its actor {MAX_CHUNK_ATTEMPTS} times (last: {type(e).__name__}); "
                        "its architectures may crash workers: rerun with a smaller `chunk_size` to isolate them",
                        options=["chunk_size"],
                    ) from e
                chunks.appendleft(chunk)
                if not isinstance(e, ray.exceptions.ActorUnavailableError) and actor in live:
                    live.remove(actor)  # died for good (its restarts used up): the others take its work
                if not live:
                    raise ChunkLostError("every ingest actor died; committed shards are kept, rerun to finish") from e
                submit(actor if actor in live else live[attempts[chunk[0]] % len(live)])
                continue
            with r.catalog.writer() as w:
                w.commit(manifest, replace=cfg.retry_failed)
            summary.done += len(manifest.archs)
            summary.failed += failed
            summary.worker_seconds += worker_seconds
            bar.update(len(manifest.archs))
            bar.set_postfix(failed=summary.failed)
            submit(actor)
    finally:
        bar.close()
        for actor in actors:
            ray.kill(actor)
