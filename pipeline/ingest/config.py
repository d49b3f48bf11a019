"""One ingest configuration, validated once, hashed, and stored with every run (pycls style)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from zcpipe.pipeline import defaults
from zcpipe.pipeline.errors import ConfigError
from zcpipe.version import ENGINE_VERSION
from zcpipe.workers.datasets import get_dataset
from zcpipe.workers.device import precision_label
from zcpipe.workers.proxies import get_proxies
from zcpipe.workers.spaces import get_space, space_factory

ALWAYS = ("params", "flops")


@dataclass(frozen=True)
class IngestConfig:
    """What to compute (space, architectures, proxies, data) and how (actors, chunks, splitting)."""

    space: str
    store: str
    limit: int | None = None
    archs_file: str | None = None
    all_archs: bool = False
    proxies: tuple[str, ...] = defaults.PROXIES
    data: str = defaults.DATA
    data_root: str | None = None
    batch_size: int = defaults.BATCH_SIZE
    seed: int = defaults.SEED
    workers: int = defaults.WORKERS
    gpus: int = 0
    actors_per_gpu: int = defaults.ACTORS_PER_GPU
    cpus_per_worker: int = defaults.CPUS_PER_WORKER
    ray_address: str | None = None
    chunk_size: int = defaults.CHUNK_SIZE
    micro_batch: int | None = None
    memory_budget_mb: float | None = None
    device: str = defaults.DEVICE  # auto: cuda with gpus, else cpu; cpu with gpus places by GPU, computes on CPU
    retry_failed: bool = False
    compact: bool = True  # merge small shards after a run that left many (store/compact.py)
    # Bounds on the driver's waits: for the actors to start, and for the next chunk to finish.
    start_timeout_s: float = defaults.START_TIMEOUT_S
    stall_timeout_s: float = defaults.STALL_TIMEOUT_S
    space_params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_space_params(self.space, self.space_params)  # UnknownSpaceError names the spaces
        get_proxies(list(self.proxies))  # UnknownProxyError names the choices
        picks = sum([self.limit is not None, self.archs_file is not None, self.all_archs])
        if picks != 1:
            raise ConfigError(
                "choose exactly one of `limit` N, `archs_file` FILE or `all_archs`",
                options=["limit", "archs_file", "all_archs"],
            )
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"`limit` must be positive, got {self.limit}", options=["limit"])
        if self.archs_file is not None and not Path(self.archs_file).is_file():
            raise ConfigError(
                f"`archs_file` {self.archs_file}: no such file (one arch key per line)", options=["archs_file"]
            )
        get_dataset(self.data)  # DatasetError names the choices
        for name in ("batch_size", "workers", "actors_per_gpu", "cpus_per_worker", "chunk_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be at least 1", options=[name])
        if self.gpus < 0:
            raise ConfigError("`gpus` must be zero or more", options=["gpus"])
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"`device` {self.device!r}: choose auto, cpu or cuda", options=["device"])
        if self.device == "cuda" and not self.gpus:
            raise ConfigError("`device` cuda needs `gpus` N (one actor per GPU)", options=["device", "gpus"])
        if self.gpus and self.device != "cpu" and not torch.cuda.is_available() and self.ray_address is None:
            raise ConfigError(
                f"`gpus` {self.gpus} but torch sees no CUDA device here; use `workers` N for CPU actors",
                options=["gpus", "workers"],
            )
        if self.start_timeout_s <= 0 or self.stall_timeout_s <= 0:
            raise ConfigError(
                "`start_timeout_s` and `stall_timeout_s` must be positive (seconds)",
                options=["start_timeout_s", "stall_timeout_s"],
            )
        if self.micro_batch is not None and self.micro_batch < 1:
            raise ConfigError("`micro_batch` must be at least 1", options=["micro_batch"])

    @property
    def all_proxies(self) -> tuple[str, ...]:
        """The asked-for proxies plus the counts every row carries."""
        return tuple(dict.fromkeys((*self.proxies, *ALWAYS)))

    @property
    def compute_device(self) -> str:
        """The torch device kind the actors compute on: cuda with gpus (unless device is cpu), else cpu."""
        return "cuda" if self.gpus and self.device != "cpu" else "cpu"

    def value_config(
        self, batch_sha256: str, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32)
    ) -> dict:
        """Everything that changes a computed value; its hash is `config_hash`.

        A GPU run is a configuration of its own: cuDNN and cuBLAS sum in other orders than the CPU
        kernels, so float32 values differ in their last digits (GraSP's double backward, and NASWOT
        codes of activations at zero, by more), and CPU and GPU rows must not stand in for each
        other. CPU configurations carry no device entry, so the hashes of existing stores stand.

        The task is the dataset's name, batch hash, class count and input shape; the last two enter only
        where they differ from CIFAR-10's (10 classes, 3×32×32), so the hashes of CIFAR-10 and synthetic
        stores written before stand too. An alias space (nb301) hashes as the space it builds.
        """
        extra: dict = {}
        if self.compute_device == "cuda":
            extra |= {"device": "cuda", "precision": precision_label("cuda")}
        if (num_classes, tuple(input_shape)) != (10, (3, 32, 32)):
            extra |= {"num_classes": num_classes, "input_shape": list(input_shape)}
        space = get_space(self.space, **self.space_params)
        return {
            **extra,
            "engine_version": ENGINE_VERSION,
            "space": space.name,
            "space_params": space.params(),
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
        """The options as stored with every run."""
        return asdict(self)


def check_space_params(space: str, params: dict) -> None:
    """The space exists and takes `params` (its builder's keyword arguments, of the right kinds)."""
    import inspect

    get_space(space)  # UnknownSpaceError names the spaces
    factory = space_factory(space)
    accepted = {n: p for n, p in inspect.signature(factory).parameters.items() if p.kind is p.KEYWORD_ONLY
                or p.kind is p.POSITIONAL_OR_KEYWORD}  # fmt: skip
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        takes = ", ".join(f"{n}={p.default!r}" for n, p in accepted.items()) or "none"
        raise ConfigError(
            f"space {space} takes no option {', '.join(unknown)} (`space_params`); its options: {takes}",
            options=["space_params"],
        )
    try:
        get_space(space, **params)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"space {space}: {e} (`space_params`)", options=["space_params"]) from None


def config_hash(value_config: dict) -> str:
    """The 16-hex-digit hash of a value configuration: (arch, config_hash) is unique in a store."""
    return hashlib.sha256(json.dumps(value_config, sort_keys=True).encode()).hexdigest()[:16]
