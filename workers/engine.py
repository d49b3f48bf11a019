"""The proxy engine: all requested proxies for one network, sharing passes where definitions allow.

`compute` is the fast path (one data forward/backward for every data proxy);
`compute_one_at_a_time` is the zero-cost-nas way, a fresh copy and its own passes
per proxy, kept as the oracle that tests compare against.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from zcpipe.workers.device import is_out_of_memory, release_cached_memory, synchronize
from zcpipe.workers.proxies import Batch, Proxy, ProxyContext, ProxyUndefined
from zcpipe.workers.proxies.counts import (
    CountPass,
    activation_bytes_per_image,
    count_pass,
    counts_of,
    forward_flops,
    layer_params,
    weight_layer_flops,
)
from zcpipe.workers.proxies.passes import DataPass, run_data_pass
from zcpipe.workers.spaces.base import weight_layers

# Bytes of saved activations per image, times this, must fit the budget (create_graph for GraSP
# keeps a differentiable backward graph, about twice the plain one).
HVP_FACTOR, PLAIN_FACTOR = 4.0, 2.0


@dataclass
class LayerStat:
    """One weight layer of a network: its slot, op, shape and counts, and each layer proxy's value."""

    slot: str
    op: str
    op_type: str
    shape: list[int]
    numel: int
    params: int
    flops: int | None
    values: dict[str, float | None] = field(default_factory=dict)


@dataclass
class ArchStats:
    """One architecture's values (NULL ones with reasons), its layers, seconds per proxy, micro-batches."""

    values: dict[str, float | None]
    reasons: dict[str, str]
    layers: list[LayerStat]
    seconds: dict[str, float]
    micro_batches: int = 1


def _reduce(scores: list[torch.Tensor]) -> list[float]:
    """Each layer's score tensor summed, in float64, with one device-to-host copy for all layers.

    float64 before summing: synflow's per-weight terms span dozens of orders of magnitude. All layers
    go through one concatenation and one segmented sum (a few kernels per proxy rather than two per
    layer), and cross to the host together: a `float()` per layer would wait for the device hundreds
    of times per architecture.
    """
    if not scores:
        return []
    return segment_sums([t.detach().reshape(-1) for t in scores], [t.numel() for t in scores])


def segment_sums(flat_parts: list[torch.Tensor], lengths: list[int]) -> list[float]:
    """The float64 sums of consecutive segments of `lengths` elements of the concatenated parts, on the
    host: one concatenation, one conversion, one segmented sum, one copy."""
    flat = torch.cat(flat_parts).to(torch.float64)
    counts = torch.tensor(lengths, device=flat.device)
    return torch.segment_reduce(flat, "sum", lengths=counts).cpu().tolist()


def record_arch_value(stats: ArchStats, proxy: Proxy, value: float) -> None:
    """A whole-network proxy's value, NULL with the reason where it is not finite."""
    if math.isfinite(value):
        stats.values[proxy.name] = value
    else:
        stats.values[proxy.name] = None
        stats.reasons[proxy.name] = f"value is {value}"


def record_layer_values(stats: ArchStats, proxy: Proxy, per_layer: list[float]) -> None:
    """A layer proxy's values, one per weight layer in order, and their sum as the whole-network value.

    A non-finite layer is NULL; the sum is NULL with the first such layer named. For a proxy that
    declares undefined layers, NaN means "no value by definition": left out of the sum.
    """
    for layer, v in zip(stats.layers, per_layer, strict=True):
        layer.values[proxy.name] = v if math.isfinite(v) else None
    skip_nan = proxy.undefined_layers is not None
    counted = [(i, v) for i, v in enumerate(per_layer) if not (skip_nan and math.isnan(v))]
    if not counted and skip_nan:
        stats.values[proxy.name] = None
        stats.reasons[proxy.name] = f"undefined in every layer ({proxy.undefined_layers})"
        return
    bad = [stats.layers[i].slot for i, v in counted if not math.isfinite(v)]
    if bad:
        stats.values[proxy.name] = None
        stats.reasons[proxy.name] = f"non-finite in {len(bad)} layer(s), first {bad[0]} (float64 overflow?)"
    else:
        stats.values[proxy.name] = math.fsum(v for _, v in counted)


class ProxyEngine:
    """Computes a set of proxies for networks, sharing passes; splits a batch that does not fit."""

    def __init__(
        self,
        proxies: list[Proxy],
        micro_batch: int | None = None,
        memory_budget_bytes: int | None = None,
    ):
        self.proxies = proxies
        self.micro_batch = micro_batch
        self.memory_budget_bytes = memory_budget_bytes
        self._device: torch.device | None = None

    # ------------------------------------------------------------------ public

    def compute(self, model: nn.Module, batch: Batch, generator_seed: int) -> ArchStats:
        """Every proxy of `model` on `batch`, sharing one data pass among the data proxies."""
        self._device = batch.images.device
        data_proxies = [p for p in self.proxies if p.pass_name == "data"]
        # params and flops come from the data pass's own forward: no forward of their own (~270 launches
        # on NB201).
        later = bool(data_proxies) and bool(self._counters())
        stats, named = self.skeleton(model, batch, count=not later)
        layers = [m for _, m in named]
        if data_proxies:
            needs = {need for p in data_proxies for need in p.needs}
            t0 = time.perf_counter()
            with forward_flops(model) if later else contextlib.nullcontext() as counted:
                data = self._data_pass_with_split(model, batch, layers, needs)
            stats.micro_batches = max(1, data.micro_batches)
            share = (time.perf_counter() - t0) / len(data_proxies)
            for p in data_proxies:
                self.record(stats, p, lambda p=p: p.extract(data), share)
            del data
            if later:
                t0 = time.perf_counter()
                # A data pass that returned ran a forward; should a pass not, a forward of its own.
                flops = counted.result(model)
                if flops is None:
                    flops = weight_layer_flops(model, tuple(batch.images.shape[1:]), batch.images.dtype)
                self._record_counts(stats, counts_of(model, flops), time.perf_counter() - t0)
        # Standalone passes start on the whole batch (zen's no-grad forward needs far less memory
        # than the data pass) and split only when the device runs out of memory.
        # `--micro-batch` reaches the passes that split (zen) too; out of memory may split them further.
        ctx = ProxyContext(layers=layers, generator_seed=generator_seed, micro_batch=self.micro_batch)
        for p in self.proxies:
            if p.pass_name not in ("data", "count"):  # every other pass is the proxy's own
                self.record(stats, p, lambda p=p: self.standalone_with_split(p, model, batch, ctx))
                if p.splits_batch and ctx.micro_batch is not None and ctx.micro_batch < batch.images.shape[0]:
                    # The row records the finest split any pass took (BatchNorm saw micro-batches alone).
                    stats.micro_batches = max(stats.micro_batches, math.ceil(batch.images.shape[0] / ctx.micro_batch))
        return stats

    def compute_one_at_a_time(self, model: nn.Module, batch: Batch, generator_seed: int) -> ArchStats:
        """Every proxy of `model` on `batch`, each on a fresh copy with its own passes (the oracle)."""
        self._device = batch.images.device
        stats, _ = self.skeleton(model, batch)
        for p in self.proxies:

            def run(p=p):
                net = copy.deepcopy(model)  # zero-cost-nas: a fresh copy per measure
                ctx = ProxyContext(layers=[m for _, m in weight_layers(net)], generator_seed=generator_seed)
                return p.standalone(net, batch, ctx)

            self.record(stats, p, run)
        return stats

    # ------------------------------------------------------------------ internals

    def _counters(self) -> list[Proxy]:
        return [p for p in self.proxies if p.pass_name == "count"]

    def skeleton(
        self, model: nn.Module, batch: Batch, counts: CountPass | None = None, count: bool = True
    ) -> tuple[ArchStats, list[tuple[str, nn.Module]]]:
        """The network's layers with their counts (the count pass, or `counts` where the caller took
        them another way: the batched path), no proxy values yet; with `count` False, no counts either
        (the caller records them with `_record_counts`)."""
        named = weight_layers(model)
        stats = ArchStats(values={}, reasons={}, layers=[], seconds={})
        for _, m in named:
            stats.layers.append(
                LayerStat(
                    slot=m.zc_slot,
                    op=m.zc_op,
                    op_type=type(m).__name__,
                    shape=list(m.weight.shape),
                    numel=m.weight.numel(),
                    params=layer_params(m),
                    flops=None,
                )
            )
        if count and self._counters():
            t0 = time.perf_counter()
            if counts is None:
                counts = count_pass(model, tuple(batch.images.shape[1:]), batch.images.dtype, activation_bytes=False)
            self._record_counts(stats, counts, time.perf_counter() - t0)
        return stats, named

    def _record_counts(self, stats: ArchStats, counts: CountPass, seconds: float) -> None:
        """The count proxies' values and each layer's FLOPs, from `counts`."""
        for layer, flops in zip(stats.layers, counts.layer_flops, strict=True):
            layer.flops = flops
        counters = self._counters()
        for p in counters:
            self.record(stats, p, lambda p=p: p.extract(counts), seconds / len(counters))

    def record(self, stats: ArchStats, proxy: Proxy, fn, extra_seconds: float = 0.0) -> None:
        """Run `fn` (one proxy's scores) and store its values, or NULL with the reason it gave."""
        t0 = time.perf_counter()
        try:
            result = fn()
            if self._device is not None:
                synchronize(self._device)  # the timer measures the kernels, not their launch
        except ProxyUndefined as e:
            stats.values[proxy.name] = None
            stats.reasons[proxy.name] = str(e)
            result = None
        stats.seconds[proxy.name] = extra_seconds + time.perf_counter() - t0
        if result is None:
            for layer in stats.layers:
                layer.values.setdefault(proxy.name, None)
            return
        if proxy.scope == "arch":
            record_arch_value(stats, proxy, float(result))
        else:
            record_layer_values(stats, proxy, _reduce(result))

    def _data_pass_with_split(self, model, batch, layers, needs) -> DataPass:
        micro = self.micro_batch
        if micro is None and self.memory_budget_bytes is not None:
            micro = plan_micro_batch(model, batch, self.memory_budget_bytes, "hvp" in needs)
        while True:
            try:
                return run_data_pass(model, batch, layers, needs, micro)
            except (RuntimeError, MemoryError) as e:
                if not is_out_of_memory(e) or (micro or batch.images.shape[0]) <= 1:
                    raise
            # Out of the except block, so the failed pass's frames (and tensors) are released
            # before the cache is emptied. Split further rather than drop the batch: halve
            # until one image per pass.
            micro = (micro or batch.images.shape[0]) // 2
            release_cached_memory(batch.images.device)

    def standalone_with_split(self, proxy: Proxy, model, batch, ctx: ProxyContext):
        """A standalone pass; out of memory halves the micro-batch of a pass that can split (zen),
        and is a NULL with its reason for one that cannot (synflow's pass is one image already)."""
        while True:
            try:
                return proxy.standalone(model, batch, ctx)
            except (RuntimeError, MemoryError) as e:
                if not is_out_of_memory(e):
                    raise
                current = ctx.micro_batch or batch.images.shape[0]
                if not proxy.splits_batch or current <= 1:
                    where = f"at {current} image(s)" if proxy.splits_batch else "(its pass does not split)"
                    undefined = ProxyUndefined(f"out of memory on {batch.images.device.type} {where}")
                else:
                    undefined = None
            release_cached_memory(batch.images.device)
            if undefined is not None:
                raise undefined
            ctx.micro_batch = current // 2


def plan_micro_batch(model: nn.Module, batch: Batch, budget_bytes: int, hvp: bool) -> int | None:
    """Largest micro-batch whose saved activations fit `budget_bytes` (None: the whole batch fits), from
    the bytes one image saves in a train-mode forward (`activation_bytes_per_image`; no statistic moves).
    The budget is the machine's share, so a plan is the machine's, not the configuration's: each row
    records the micro-batches it ran in."""
    bytes_per_image = activation_bytes_per_image(model, tuple(batch.images.shape[1:]), batch.images.dtype)
    per_image = bytes_per_image * (HVP_FACTOR if hvp else PLAIN_FACTOR)
    fits = max(1, int(budget_bytes // max(per_image, 1.0)))
    return None if fits >= batch.images.shape[0] else fits
