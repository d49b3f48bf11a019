"""Starting or joining Ray, and sizing actors so they never starve each other of CPUs."""

from __future__ import annotations

import logging
import os

import ray

from zcpipe.pipeline.errors import ClusterTooSmallError
from zcpipe.pipeline.ingest.config import IngestConfig


def start_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Join the cluster at `address`, or start an embedded Ray of `num_cpus`; True if this call started it
    (the caller shuts it down), False if this process was already connected."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        return True
    # The embedded cluster is private to this process: token auth only adds a warning here.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(
        # "local": a Ray of its own, even when another cluster is registered on this machine (`ray start`
        # under the same RAY_TMPDIR, or RAY_ADDRESS set); joining one is what `--ray-address auto` is for.
        address="local",
        num_cpus=num_cpus or os.cpu_count(),
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    return True


def ensure_ray(cfg: IngestConfig) -> bool:
    """Start an embedded Ray sized for the ingest's actors (or join `--ray-address`)."""
    need = cfg.n_actors * (1 if cfg.gpus else cfg.cpus_per_worker)
    return start_ray(cfg.ray_address, max(os.cpu_count() or 1, need))


def actor_plan(cfg: IngestConfig, work: int | None = None) -> tuple[int, dict, str, int]:
    """(number of actors, ray resource options, torch device, torch threads per actor); no more actors
    than `work` architectures where given."""
    n_actors = min(cfg.n_actors, work) if work is not None else cfg.n_actors
    if cfg.gpus:
        return n_actors, {"num_gpus": 1.0 / cfg.actors_per_gpu, "num_cpus": 1}, cfg.compute_device, 1
    return n_actors, {"num_cpus": cfg.cpus_per_worker}, "cpu", cfg.cpus_per_worker


_RAY_NAMES = {"num_cpus": "CPU", "num_gpus": "GPU"}


def check_fits(n_actors: int, resources: dict, nodes: list[dict] | None = None) -> None:
    """Raise `ClusterTooSmallError` unless the alive nodes can hold `n_actors` actors of `resources`.

    Ray queues an actor it cannot place and never says so: an ingest that asks for more GPUs (or
    CPUs beside them) than the cluster has would wait on its actors forever. Each actor lives on
    one node, so the count is per node: a node with G GPUs and C CPUs holds
    min(G / num_gpus, C / num_cpus) actors.
    """
    nodes = [n for n in (ray.nodes() if nodes is None else nodes) if n.get("Alive", True)]
    need = {_RAY_NAMES[k]: float(v) for k, v in resources.items() if k in _RAY_NAMES and v}
    fits = 0
    for node in nodes:
        have = node.get("Resources", {})
        # A small epsilon: Ray keeps fractional resources in units of 1e-4.
        fits += int(min((have.get(k, 0.0) + 1e-6) // v for k, v in need.items())) if need else n_actors
    if fits >= n_actors:
        return
    total = {k: sum(n.get("Resources", {}).get(k, 0.0) for n in nodes) for k in ("CPU", "GPU")}
    ask = " + ".join(f"{v:g} {k}" for k, v in need.items())
    raise ClusterTooSmallError(
        f"the plan needs {n_actors} actors of {ask} each, but the Ray cluster ({len(nodes)} node(s), "
        f"{total['CPU']:g} CPUs, {total['GPU']:g} GPUs) can place {fits}"
    )
