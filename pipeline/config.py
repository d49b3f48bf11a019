"""One ingest configuration, validated once, hashed, and stored with every run (pycls style)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

import zcpipe
from zcpipe.workers.data import DATASETS
from zcpipe.workers.device import precision_label
from zcpipe.workers.proxies import DEFAULT_PROXIES, get_proxies
from zcpipe.workers.spaces import get_space

ALWAYS = ("params", "flops")


class ConfigError(ValueError):
    """An ingest option is invalid; the message names the option and the fix."""


@dataclass(frozen=True)
class IngestConfig:
    space: str
    store: str
    limit: int | None = None
    archs_file: str | None = None
    all_archs: bool = False
    proxies: tuple[str, ...] = DEFAULT_PROXIES
    data: str = "synthetic"
    data_root: str | None = None
    batch_size: int = 64
    seed: int = 0
    workers: int = 1
    gpus: int = 0
    actors_per_gpu: int = 1
    cpus_per_worker: int = 1
    ray_address: str | None = None
    chunk_size: int = 16
    micro_batch: int | None = None
    memory_budget_mb: float | None = None
    device: str = "auto"  # auto: cuda with --gpus, else cpu; cpu with --gpus places by GPU, computes on CPU
    retry_failed: bool = False
    compact: bool = True  # merge small shards after a run that left many (store/compact.py)
    # Bounds on the driver's waits: for the actors to start, and for the next chunk to finish.
    start_timeout_s: float = 600.0
    stall_timeout_s: float = 3600.0
    space_params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        get_space(self.space, **self.space_params)  # UnknownSpaceError names the choices
        get_proxies(list(self.proxies))  # UnknownProxyError names the choices
        picks = sum([self.limit is not None, self.archs_file is not None, self.all_archs])
        if picks != 1:
            raise ConfigError("choose exactly one of --limit N, --archs FILE or --all")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be positive, got {self.limit}")
        if self.archs_file is not None and not Path(self.archs_file).is_file():
            raise ConfigError(f"--archs {self.archs_file}: no such file (one arch key per line)")
        if self.data not in DATASETS:
            raise ConfigError(f"--data {self.data!r} is not supported; choose one of: {', '.join(DATASETS)}")
        for name in ("batch_size", "workers", "actors_per_gpu", "cpus_per_worker", "chunk_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.gpus < 0:
            raise ConfigError("--gpus must be zero or more")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"--device {self.device!r}: choose auto, cpu or cuda")
        if self.device == "cuda" and not self.gpus:
            raise ConfigError("--device cuda needs --gpus N (one actor per GPU)")
        if self.gpus and self.device != "cpu" and not torch.cuda.is_available() and self.ray_address is None:
            raise ConfigError(f"--gpus {self.gpus} but torch sees no CUDA device here; use --workers N for CPU actors")
        if self.start_timeout_s <= 0 or self.stall_timeout_s <= 0:
            raise ConfigError("--start-timeout and --stall-timeout must be positive (seconds)")
        if self.micro_batch is not None and self.micro_batch < 1:
            raise ConfigError("--micro-batch must be at least 1")

    @property
    def all_proxies(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.proxies, *ALWAYS)))

    @property
    def compute_device(self) -> str:
        """The torch device kind the actors compute on: cuda with --gpus (unless --device cpu), else cpu."""
        return "cuda" if self.gpus and self.device != "cpu" else "cpu"

    def value_config(self, batch_sha256: str) -> dict:
        """Everything that changes a computed value; its hash is `config_hash`.

        A GPU run is a configuration of its own: cuDNN and cuBLAS sum in other orders than the CPU
        kernels, so float32 values differ in their last digits (GraSP's double backward, and NASWOT
        codes of activations at zero, by more), and CPU and GPU rows must not stand in for each
        other. CPU configurations carry no device entry, so the hashes of existing stores stand.
        """
        device = {}
        if self.compute_device == "cuda":
            device = {"device": "cuda", "precision": precision_label("cuda")}
        return {
            **device,
            "engine_version": zcpipe.ENGINE_VERSION,
            "space": self.space,
            "space_params": get_space(self.space, **self.space_params).params(),
            "proxies": sorted(f"{p.name}@{p.version}" for p in get_proxies(list(self.all_proxies))),
            "data": self.data,
            "batch_sha256": batch_sha256,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "dtype": "float32",
            "init": "torch-default",
            "micro_batch": self.micro_batch,
        }

    def to_dict(self) -> dict:
        return asdict(self)


def config_hash(value_config: dict) -> str:
    return hashlib.sha256(json.dumps(value_config, sort_keys=True).encode()).hexdigest()[:16]
