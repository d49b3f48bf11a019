"""Computes the proxies of a list of architectures on one device. No Ray, no storage here."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from zcpipe.workers import failpoints
from zcpipe.workers.allocator import keep_freed_memory
from zcpipe.workers.batched.build import can_batch
from zcpipe.workers.batched.engine import BatchedEngine, choose_arch_batch
from zcpipe.workers.collector import collect_less_often
from zcpipe.workers.data import to_batch
from zcpipe.workers.device import (
    DeviceFault,
    configure_precision,
    is_device_fault,
    is_out_of_memory,
    release_cached_memory,
    share_of_memory,
)
from zcpipe.workers.engine import ArchStats, ProxyEngine
from zcpipe.workers.proxies import get_proxies
from zcpipe.workers.seeding import derive_seed
from zcpipe.workers.spaces import ArchError, BuildOptions, get_space

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    space: str
    proxies: tuple[str, ...]
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    space_params: dict = field(default_factory=dict)
    micro_batch: int | None = None
    memory_budget_mb: float | None = None
    one_at_a_time: bool = False  # the zero-cost-nas path; benchmarks and oracle tests only
    # Architectures per batched pass (workers/batched), for spaces whose networks batch (NB201);
    # 1 computes one architecture at a time, 0 chooses from the memory budget. Out of memory halves it
    # before images are split.
    arch_batch: int = 1
    # Processes that share this device (--actors-per-gpu): without a memory budget, the automatic
    # arch_batch plans for this part of the device's memory.
    device_share: int = 1


@dataclass
class ArchRecord:
    arch: str
    spec: str
    status: str  # ok | partial | failed
    reason: str | None
    stats: ArchStats | None
    seconds: float
    device: str


class ProxyWorker:
    """Computes the proxies of architectures of one space on one device, one at a time.

    A failure of one architecture is a `failed` record; a device fault (a sticky CUDA error) is
    raised as `DeviceFault`, since every later architecture in this process would fail too.
    """

    def __init__(self, cfg: WorkerConfig, images: np.ndarray, labels: np.ndarray, num_classes: int):
        self.cfg = cfg
        collect_less_often()  # a few hundred modules per architecture: workers/collector.py
        if cfg.device == "cpu":
            torch.set_num_threads(max(1, cfg.threads))
            keep_freed_memory()
        self.device = torch.device(cfg.device)
        self.precision = configure_precision(self.device)
        self.space = get_space(cfg.space, **cfg.space_params)
        self.batch = to_batch(images, labels, num_classes, self.device)
        self.options = BuildOptions(num_classes=num_classes, input_shape=tuple(images.shape[1:]))
        budget = None if cfg.memory_budget_mb is None else int(cfg.memory_budget_mb * 2**20)
        self.engine = ProxyEngine(get_proxies(list(cfg.proxies)), cfg.micro_batch, budget)
        self.batched = BatchedEngine(self.engine)
        # 0: chosen from the memory budget at the first chunk; 1: one architecture at a time.
        self.arch_batch = cfg.arch_batch if cfg.micro_batch is None and not cfg.one_at_a_time else 1
        self.device_name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"

    def compute(self, arch: str, spec: str | None = None) -> ArchRecord:
        """Proxies of the architecture with key `arch`, built from `spec` (the key where omitted)."""
        spec = arch if spec is None else spec
        t0 = time.perf_counter()
        try:
            failpoints.hit("device-fault")
            torch.manual_seed(derive_seed(self.cfg.seed, arch))
            model = self.space.build(spec, self.options).to(self.device)
            run = self.engine.compute_one_at_a_time if self.cfg.one_at_a_time else self.engine.compute
            stats = run(model, self.batch, derive_seed(self.cfg.seed, arch, "proxy"))
        # One architecture's failure is a row, not a failed run: record what went wrong and go on.
        except (ArchError, RuntimeError, ValueError, ArithmeticError, MemoryError) as e:
            if is_device_fault(e):
                raise DeviceFault(f"{type(e).__name__} on {self.device_name} at arch {arch}: {e}"[:500]) from e
            log.warning("arch %s failed: %s", arch, e)
            return ArchRecord(
                arch,
                spec,
                "failed",
                f"{type(e).__name__}: {e}"[:500],
                None,
                time.perf_counter() - t0,
                self.device_name,
            )
        # No empty_cache() here: the caching allocator keeps its blocks for the next architecture,
        # which needs about as much; it is emptied only when a pass runs out of memory.
        status = "partial" if stats.reasons else "ok"
        return ArchRecord(arch, spec, status, None, stats, time.perf_counter() - t0, self.device_name)

    def compute_many(self, archs: list[tuple[str, str]]) -> list[ArchRecord]:
        """`compute` for each (key, spec) pair, in order; `arch_batch` of them at a time where the space's
        networks batch."""
        if self.arch_batch == 0 and archs:
            self.arch_batch = self._auto_arch_batch(archs[0][1])
        if self.arch_batch <= 1:
            return [self.compute(key, spec) for key, spec in archs]
        # Passes of architectures that share ops: sorted by spec, neighbours share their first edges (an
        # NB201 cell string, a DARTS genotype), and a choice where a whole pass picked one op runs that op
        # with no block moves (workers/batched/blocks.py). A pass's values do not depend on its company.
        order = sorted(range(len(archs)), key=lambda i: archs[i][1])
        records: list[ArchRecord | None] = [None] * len(archs)
        at = 0
        while at < len(order):  # arch_batch may shrink on the way (out of memory)
            chunk = order[at : at + max(1, self.arch_batch)]
            for i, record in zip(chunk, self._compute_batched([archs[i] for i in chunk]), strict=True):
                records[i] = record
            at += len(chunk)
        return records

    def _auto_arch_batch(self, spec: str) -> int:
        """`arch_batch` 0: as many architectures as fit the memory budget, or this process's share of the
        device's memory (`share_of_memory`), up to `MAX_ARCH_BATCH`."""
        budget = self.engine.memory_budget_bytes
        if budget is None:
            budget = share_of_memory(self.device, self.cfg.device_share)
        try:
            model = self.space.build(spec, self.options)
        except ArchError:
            return 1
        hvp = any("hvp" in p.needs for p in self.engine.proxies)
        chosen = choose_arch_batch(model, self.batch, budget, hvp)
        log.info("batched path: %d architectures per pass", chosen)
        return chosen

    def _compute_batched(self, archs: list[tuple[str, str]]) -> list[ArchRecord]:
        t0 = time.perf_counter()
        failpoints.hit("device-fault")
        models, seeds = [], []
        for key, spec in archs:
            torch.manual_seed(derive_seed(self.cfg.seed, key))
            try:
                # Left on the host: the batched network moves its stacked tensors to the device, one copy
                # each, where moving the networks would copy every tensor of every one.
                models.append(self.space.build(spec, self.options))
            except ArchError:
                return [self.compute(key, spec) for key, spec in archs]  # the bad one fails alone
            seeds.append(derive_seed(self.cfg.seed, key, "proxy"))
        if not can_batch(models):
            self.arch_batch = 1  # not a batchable space: one at a time from now on
            return [self.compute(key, spec) for key, spec in archs]
        try:
            failpoints.hit("batched-oom")
            stats = self.batched.compute(models, self.batch, seeds)
        except (RuntimeError, ValueError, ArithmeticError, MemoryError) as e:
            if is_device_fault(e):
                raise DeviceFault(f"{type(e).__name__} on {self.device_name} in a batched pass: {e}"[:500]) from e
            oom = is_out_of_memory(e)
            failure = f"{type(e).__name__}: {e}"[:300]
        else:
            seconds = (time.perf_counter() - t0) / len(archs)
            return [
                ArchRecord(key, spec, "partial" if st.reasons else "ok", None, st, seconds, self.device_name)
                for (key, spec), st in zip(archs, stats, strict=True)
            ]
        # Out of the except block, so the failed pass's tensors are released first.
        del models
        release_cached_memory(self.device)
        if oom and len(archs) > 1:
            # Out of memory halves the architectures per pass (for the rest of the run) before
            # the single engine would split the images.
            self.arch_batch = max(1, len(archs) // 2)
            log.warning("out of memory at %d architectures per pass; trying %d", len(archs), self.arch_batch)
            half = len(archs) // 2
            return self._compute_batched(archs[:half]) + self._compute_batched(archs[half:])
        # Anything else: one at a time, so the architecture that fails fails alone. Said, because a pass
        # that fails for every architecture in it is the batched path's fault and costs its speed.
        log.warning("a batched pass of %d architectures failed (%s); computing them one at a time", len(archs), failure)
        return [self.compute(key, spec) for key, spec in archs]
