"""One ingest configuration, validated once, hashed, and stored with every run (pycls style).

Each field declares its default and help once (`setting`); the `zcpipe ingest` options are built from
them (zcpipe/cli/options.py). This module imports neither torch nor Ray, so the CLI can read the fields
without them. The worker side's configurations (`data_spec`, `worker_config`) are built from this one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zcpipe import settings
from zcpipe.pipeline import defaults
from zcpipe.pipeline.errors import ConfigError
from zcpipe.pipeline.options import setting
from zcpipe.version import ENGINE_VERSION
from zcpipe.workers.proxy_sets import DEFAULT_PROXIES

if TYPE_CHECKING:
    from zcpipe.workers.data import DataSpec
    from zcpipe.workers.worker import WorkerConfig

ALWAYS = ("params", "flops")


@dataclass(frozen=True)
class IngestConfig:
    """What to compute (space, architectures, proxies, data) and how (actors, chunks, micro-batches).

    Vocabulary: a *chunk* is the architectures one actor computes and commits as one shard
    (`chunk_size`); a *micro-batch* is a slice of the minibatch's images one pass takes (`micro_batch`).
    """

    space: str = setting(help="search space, e.g. nb201 (`zcpipe spaces`); nb301 is NAS-Bench-301's network")
    store: str = setting(
        defaults.STORE, help="store: a folder (created if missing) or an fsspec URL such as s3://bucket/prefix"
    )
    limit: int | None = setting(None, help="a seeded uniform sample of N architectures")
    archs_file: str | None = setting(None, help="file with one arch key per line", flag="--archs")
    all_archs: bool = setting(False, help="every architecture of a finite space", flag="--all")
    proxies: tuple[str, ...] = setting(DEFAULT_PROXIES, help="comma-separated proxy names (`zcpipe proxies`)")
    data: str = setting("synthetic", help="cifar10 | cifar100 | imagenet16-120 | synthetic-cifar10 | npz | synthetic")
    data_root: str | None = setting(None, help="the dataset's official folder, or an .npz pack (docs/ingest.md)")
    batch_size: int = setting(64, help="images in the minibatch each proxy scores")
    seed: int = setting(defaults.SEED, help="seed of the sample, the minibatch draw and the weights")
    workers: int = setting(1, help="CPU actors (with no --gpus)")
    gpus: int = setting(0, help="GPUs; one actor per GPU (times --actors-per-gpu)")
    actors_per_gpu: int = setting(1, help="actors sharing each GPU (with --gpus; they overlap only under CUDA MPS)")
    cpus_per_worker: int = setting(1, help="CPUs (and torch threads) per CPU actor")
    ray_address: str | None = setting(None, help="join this Ray cluster instead of starting one")
    chunk_size: int | None = setting(
        None, help="architectures per chunk, what one actor commits as a shard (default 16; 256 batched on GPU)"
    )
    micro_batch: int | None = setting(None, help="images per pass: split the minibatch into micro-batches")
    memory_budget_mb: float | None = setting(None, help="split the minibatch into micro-batches that fit this")
    arch_batch: int | None = setting(
        None, help="architectures per batched pass (nb201, nb301/DARTS); default: as fit, up to 64, on GPU; 1 on CPU"
    )
    # auto: cuda with gpus, else cpu; cpu with gpus places by GPU, computes on CPU
    device: str = setting("auto", help="auto | cpu | cuda; cpu with --gpus places actors by GPU")
    # One-sided switches (no --no-retry-failed, no --compact): a second name per switch widens the option
    # column of --help until long names are cut at 80 columns.
    retry_failed: bool = setting(False, help="recompute architectures that failed before", flag="--retry-failed")
    compact: bool = setting(True, help="do not merge small shards at the end", flag=" /--no-compact")
    # Bounds on the driver's waits: for the actors to start, and for the next chunk to finish.
    start_timeout_s: float = setting(
        settings.START_TIMEOUT_S, help="seconds to wait for the actors to start", flag="--start-timeout"
    )
    stall_timeout_s: float = setting(
        settings.STALL_TIMEOUT_S, help="seconds to wait for the next chunk before giving up", flag="--stall-timeout"
    )
    space_params: dict = setting(
        help="space option key=value, e.g. width=32; repeatable (`zcpipe spaces`)", flag="--space-opt", factory=dict
    )

    def __post_init__(self) -> None:
        import torch

        from zcpipe.workers.proxies import get_proxies

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
        self.data_spec  # noqa: B018 (DatasetError names the choices; a batch of at least one image)
        for name in ("workers", "actors_per_gpu", "cpus_per_worker", "chunk_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be at least 1", options=[name])
        if self.gpus < 0:
            raise ConfigError("`gpus` must be zero or more", options=["gpus"])
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"`device` {self.device!r}: choose auto, cpu or cuda", options=["device"])
        if self.actors_per_gpu != 1 and not self.gpus:
            raise ConfigError(
                "`actors_per_gpu` shares GPUs among actors: it needs `gpus` N (CPU actors are `workers`)",
                options=["actors_per_gpu", "gpus", "workers"],
            )
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
        if self.arch_batch is not None and self.arch_batch < 1:
            raise ConfigError("`arch_batch` must be at least 1 (1: one architecture at a time)", options=["arch_batch"])
        if self.arch_batch is not None and self.arch_batch > 1 and self.micro_batch is not None:
            raise ConfigError(
                "`arch_batch` and `micro_batch` exclude each other: the batched path takes the whole minibatch",
                options=["arch_batch", "micro_batch"],
            )

    @property
    def all_proxies(self) -> tuple[str, ...]:
        """The asked-for proxies plus the counts every row carries."""
        return tuple(dict.fromkeys((*self.proxies, *ALWAYS)))

    @property
    def n_actors(self) -> int:
        """How many actors the run asks for: `workers` on CPUs, or `actors_per_gpu` on each of `gpus`."""
        return self.gpus * self.actors_per_gpu if self.gpus else self.workers

    @property
    def data_spec(self) -> DataSpec:
        """The worker side's description of the minibatch."""
        from zcpipe.workers.data import DataSpec

        return DataSpec(self.data, self.data_root, self.batch_size, self.seed)

    def worker_config(self, device: str, threads: int, memory_budget_mb: float | None) -> WorkerConfig:
        """The worker side's configuration, on `device` with `threads` and the memory budget the driver
        gives each actor (it knows how many share a machine); actors that share a GPU each plan for
        their part of its memory."""
        from zcpipe.workers.worker import WorkerConfig

        return WorkerConfig(
            space=self.space,
            proxies=self.all_proxies,
            seed=self.seed,
            device=device,
            threads=threads,
            space_params=dict(self.space_params),
            micro_batch=self.micro_batch,
            memory_budget_mb=memory_budget_mb,
            arch_batch=self.batched_archs,
            device_share=self.actors_per_gpu if device == "cuda" else 1,
        )

    @property
    def chunk_archs(self) -> int:
        """Architectures per chunk: `chunk_size`, or 16 (a shard every few seconds on a CPU actor), or
        256 where a GPU actor batches them (several of its batched passes per shard)."""
        if self.chunk_size is not None:
            return self.chunk_size
        return 256 if self.batched_archs != 1 and self.compute_device == "cuda" else 16

    @property
    def batched_archs(self) -> int:
        """Architectures per batched pass: `arch_batch`, or by default 0 (the worker sizes it from the
        device's free memory, up to 64) on GPU and 1 on CPU, where the batched path is not faster
        (bench/batched.py); always 1 for a space whose networks do not batch or with micro-batches."""
        from zcpipe.workers.spaces import get_space

        if not get_space(self.space, **self.space_params).batches or self.micro_batch is not None:
            return 1
        if self.arch_batch is not None:
            return self.arch_batch
        return 0 if self.compute_device == "cuda" else 1

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
        from zcpipe.workers.device import precision_label
        from zcpipe.workers.proxies import get_proxies
        from zcpipe.workers.spaces import get_space

        extra: dict = {}
        if self.batched_archs != 1:
            # Grouped kernels (a GPU's) sum in other orders: the values equal the single engine's in float64
            # but differ in float32 by the network's rounding noise; on the CPU they come within 5e-5, not
            # bit-equal (docs/proxies.md). So a row of its own.
            extra["arch_batch"] = "grouped"
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

    from zcpipe.workers.spaces import get_space, space_factory

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
