"""Starting or joining Ray, and sizing actors so they never starve each other of CPUs."""

from __future__ import annotations

import logging
import os

import ray

from zcpipe.pipeline.config import IngestConfig


def ensure_ray(cfg: IngestConfig) -> bool:
    """Start an embedded Ray (or join `--ray-address`); True if this call started it."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if cfg.ray_address:
        ray.init(address=cfg.ray_address, logging_level=logging.WARNING, log_to_driver=False)
        return True
    # The embedded cluster is private to this process: token auth only adds a warning here.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    need = cfg.workers * cfg.cpus_per_worker if not cfg.gpus else cfg.gpus * cfg.actors_per_gpu
    ray.init(
        num_cpus=max(os.cpu_count() or 1, need),
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    return True


def actor_plan(cfg: IngestConfig) -> tuple[int, dict, str, int]:
    """(number of actors, ray resource options, torch device, torch threads per actor)."""
    if cfg.gpus:
        share = 1.0 / cfg.actors_per_gpu
        device = "cpu" if cfg.device == "cpu" else "cuda"
        return cfg.gpus * cfg.actors_per_gpu, {"num_gpus": share, "num_cpus": 1}, device, 1
    return cfg.workers, {"num_cpus": cfg.cpus_per_worker}, "cpu", cfg.cpus_per_worker
