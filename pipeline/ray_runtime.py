"""Starting or joining Ray, and sizing actors so they never starve each other of CPUs."""

from __future__ import annotations

import logging
import os

import ray

from zcpipe.pipeline.config import IngestConfig


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
        num_cpus=num_cpus or os.cpu_count(),
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    return True


def ensure_ray(cfg: IngestConfig) -> bool:
    """Start an embedded Ray sized for the ingest's actors (or join `--ray-address`)."""
    need = cfg.workers * cfg.cpus_per_worker if not cfg.gpus else cfg.gpus * cfg.actors_per_gpu
    return start_ray(cfg.ray_address, max(os.cpu_count() or 1, need))


def actor_plan(cfg: IngestConfig) -> tuple[int, dict, str, int]:
    """(number of actors, ray resource options, torch device, torch threads per actor)."""
    if cfg.gpus:
        share = 1.0 / cfg.actors_per_gpu
        device = "cpu" if cfg.device == "cpu" else "cuda"
        return cfg.gpus * cfg.actors_per_gpu, {"num_gpus": share, "num_cpus": 1}, device, 1
    return cfg.workers, {"num_cpus": cfg.cpus_per_worker}, "cpu", cfg.cpus_per_worker
